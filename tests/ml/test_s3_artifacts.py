"""With the lake on S3, MLflow artifacts (models, plots) go to the lake's bucket."""

from __future__ import annotations

import dataclasses

import pytest

from lakebox.ml import predict, train
from lakebox.ml.tracking import artifact_root
from lakebox.pipelines.github_commits.classifier import SPEC, candidates
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse

from .conftest import build_commit_features

FAST = dataclasses.replace(SPEC, candidates=lambda: {"logistic_regression": candidates()["logistic_regression"]})


@pytest.mark.slow
def test_artifacts_land_in_the_lakes_bucket(lakebox_env, s3_bucket, history, monkeypatch) -> None:
    import boto3

    monkeypatch.setenv("LAKEBOX_LAKE", f"s3://{s3_bucket}/lake")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings.load()
    assert artifact_root(settings) == f"s3://{s3_bucket}/lake/mlartifacts"
    with open_warehouse(settings) as wh:
        build_commit_features(wh, history)
        result = train(settings, wh, FAST)
        assert predict(settings, wh, FAST).rows_scored == 3466  # the model loads back from S3

    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket, Prefix="lake/mlartifacts/")
            .get("Contents", [])]
    assert any(k.endswith("confusion_matrix.png") and result.best.run_id in k for k in keys)
    assert any(k.endswith("/MLmodel") for k in keys)
    assert not (settings.home / "mlartifacts").exists()
