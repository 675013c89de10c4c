"""A warehouse holding `ml.commit_features` built from a real project's history (3,466
commits of conventional-changelog/commitlint), shaped as the github_commits dbt model
builds it, and an MLflow SQLite store in the test's home."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakebox.bench.ml import HISTORY, commit_features_sql
from lakebox.ml import specs
from lakebox.ml.commit_classifier import SPEC, candidates
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse, open_warehouse


def build_commit_features(warehouse: Warehouse, path: Path = HISTORY) -> int:
    warehouse.execute(commit_features_sql(path))
    return warehouse.query("select count(*) from ml.commit_features")[0][0]


@pytest.fixture
def history() -> Path:
    if not HISTORY.is_file():
        pytest.skip(f"the recorded commit history is not at {HISTORY} (the shared fixtures folder)")
    return HISTORY


@pytest.fixture
def settings(lakebox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("MLFLOW_TRACKING_URI", "LAKEBOX_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    return Settings.load()


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    with open_warehouse(settings) as wh:
        yield wh


@pytest.fixture
def commit_warehouse(warehouse: Warehouse, history: Path) -> Warehouse:
    assert build_commit_features(warehouse, history) == 3466
    return warehouse


# the commit classifier with one quick candidate, retrained after 3 new labels
FAST = dataclasses.replace(SPEC, pipeline="commits_fast", retrain_after=3,
                           candidates=lambda: {"logistic_regression": candidates()["logistic_regression"]})


@pytest.fixture
def fast_pipeline(monkeypatch: pytest.MonkeyPatch) -> str:
    """FAST registered as the only model of pipeline commits_fast (for the `lakebox ml` commands)."""
    monkeypatch.setattr(specs, "_registered", {})
    specs.register_spec(FAST)
    return FAST.pipeline
