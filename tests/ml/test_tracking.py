"""Each home tracks into its own MLflow store, also when one process serves several."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakebox.ml.tracking import connect, tracking_uri
from lakebox.settings import Settings


def test_connecting_one_home_does_not_point_the_next_at_its_store(
        lakebox_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    first = Settings.load()
    connect(first)
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    monkeypatch.setenv("LAKEBOX_HOME", str(tmp_path / "second-home"))
    second = Settings.load()
    assert tracking_uri(second) == f"sqlite:///{second.home}/mlflow.db" != tracking_uri(first)
    client = connect(second)
    assert client.tracking_uri == tracking_uri(second)
    assert (second.home / "mlflow.db").exists()


def test_a_users_tracking_uri_is_kept(lakebox_env: dict[str, str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = f"sqlite:///{tmp_path}/shared-mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", chosen)
    settings = Settings.load()
    assert connect(settings).tracking_uri == chosen
    assert os.environ["MLFLOW_TRACKING_URI"] == chosen
