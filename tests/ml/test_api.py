"""The ML package's public face, its light import, and the training data's fingerprint."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

import lakebox.ml
from lakebox.ml.data import fingerprint
from lakebox.ml.spec import MLModelSpec


def test_public_names() -> None:
    assert sorted(lakebox.ml.__all__) == [
        "Decision", "DriftResult", "MLModelSpec", "PredictResult", "TrainResult", "champion_version", "drift",
        "drift_stage", "predict", "predict_stage", "register", "register_spec", "specs_for", "train",
        "train_stage", "training_due",
    ]


def test_importing_the_lifecycle_and_its_commands_loads_no_ml_library() -> None:
    code = ("import sys, lakebox.ml, lakebox.ml_cli, lakebox.pipelines.github_commits.classifier; "
            "print(sorted(m for m in ('mlflow', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_fingerprint_follows_the_rows() -> None:
    table = pa.table({"sha": ["a", "b"], "n": [1, 2]})
    assert fingerprint(table) == fingerprint(pa.table({"sha": ["a", "b"], "n": [1, 2]}))
    assert fingerprint(table) != fingerprint(pa.table({"sha": ["a", "b"], "n": [1, 3]}))
    assert len(fingerprint(table)) == 64


def test_a_spec_refuses_a_metric_it_cannot_rank_by() -> None:
    common = {"name": "m", "pipeline": "p", "source_sql": "select 1", "key_columns": ("k",), "time_column": "t",
                  "label_column": "y", "features": ("x",), "candidates": dict, "predictions_table": "ml.p"}
    with pytest.raises(ValueError, match="unknown metric"):
        MLModelSpec(task="regression", metric="rmsle", **common)
    with pytest.raises(ValueError, match="cannot be ranked by mae"):
        MLModelSpec(task="classification", metric="mae", **common)
    assert not MLModelSpec(task="regression", metric="mae", **common).greater_is_better
