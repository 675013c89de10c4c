"""The same lifecycle with the warehouse on PostgreSQL: features read over psycopg,
predictions, decisions and the drift report written with COPY."""

from __future__ import annotations

import dataclasses

import pytest

from lakebox.bench.ml import commit_features_sql
from lakebox.ml import drift, predict, train
from lakebox.pipelines.github_commits.classifier import SPEC, candidates
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse

FAST = dataclasses.replace(SPEC, candidates=lambda: {"logistic_regression": candidates()["logistic_regression"]})
COLUMNS = ("sha varchar, repo varchar, author_key varchar, committed_at timestamp, hour integer, weekday integer, "
           "message_body varchar, message_length integer, is_merge boolean, parent_count integer, "
           "author_prior_commits integer, label varchar")


@pytest.mark.postgres
@pytest.mark.slow
def test_the_lifecycle_on_postgres(lakebox_env, pg_url, history, monkeypatch) -> None:
    monkeypatch.setenv("LAKEBOX_WAREHOUSE", pg_url)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings.load()
    with open_warehouse(settings) as wh:
        scratch = wh.scratch()
        scratch.execute("create schema if not exists ml")
        scratch.execute(commit_features_sql(history))
        wh.execute(f"create table ml.commit_features ({COLUMNS})")
        names = [c.split()[0] for c in COLUMNS.split(", ")]
        with wh.transaction():
            assert wh.load_from_scratch("select * from ml.commit_features", "ml.commit_features", names) == 3466

        result = train(settings, wh, FAST)
        assert result.decision.decision == "champion" and result.best.metrics["f1_macro"] > 0.3
        assert predict(settings, wh, FAST).rows_scored == 3466
        assert predict(settings, wh, FAST).rows_scored == 0
        report = drift(settings, wh, FAST)

        assert wh.query("select count(*), count(distinct sha), min(probability) > 0 "
                        "from ml.commit_predictions") == [(3466, 3466, True)]
        assert wh.query("select version, decision from ml.model_decisions") == [("1", "champion")]
        assert wh.query("select count(*) from ml.drift_report")[0][0] == len(report.features) > 0
