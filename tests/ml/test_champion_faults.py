"""Never promote blind (issue 23.1): a champion that cannot be loaded is kept, the new
version is challenger with the reason, an alert goes out and `ml models` shows it; only a
champion trained on another feature set is replaced without comparison. The who_gho
model on features shaped as its dbt model builds them, a real MLflow SQLite store."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from lakebox.ml import champion_version, train
from lakebox.ml.tracking import connect
from lakebox.ml_cli import ml_app
from lakebox.observability import flush_alerts
from tests.conftest import serve_on_loopback
from tests.ml.conftest import WHO_BAD, WHO_GOOD


def _artifact_folder(settings, name: str, version: str) -> Path:
    location = connect(settings).get_model_version_download_uri(name, version)
    assert location.startswith(f"file://{settings.home}/mlartifacts/"), location
    return Path(location.removeprefix("file://"))


def test_a_champion_that_cannot_be_loaded_is_kept(settings, who_warehouse, monkeypatch, tmp_path,
                                                  only_model) -> None:
    wh = who_warehouse
    received: list[dict] = []

    class Webhook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    first = train(settings, wh, WHO_GOOD)
    worse = train(settings, wh, WHO_BAD)
    assert (first.decision.decision, worse.decision.decision) == ("champion", "challenger")
    assert worse.decision.value > first.decision.value + 1  # MAE in years: far worse
    folder = _artifact_folder(settings, WHO_GOOD.name, "1")
    assert folder.is_dir()
    shutil.move(folder, tmp_path / "moved-away")

    with serve_on_loopback(Webhook) as url:
        monkeypatch.setenv("LAKEBOX_ALERT_WEBHOOK_URL", url)
        third = train(settings.__class__.load(), wh, WHO_BAD)
        assert flush_alerts(10)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)

    made = third.decision
    assert (made.version, made.decision, made.champion_value) == ("3", "challenger", None)
    assert made.reason.startswith("champion v1 could not be loaded or scored on the new holdout (")
    assert "champion kept" in made.reason and "lakebox ml forget life-expectancy" in made.reason
    client = connect(settings)
    assert champion_version(client, WHO_GOOD.name) == "1"
    assert str(client.get_model_version_by_alias(WHO_GOOD.name, "challenger").version) == "3"
    rows = wh.query("select version, decision, reason from ml.model_decisions order by decided_at")
    assert [(v, d) for v, d, _ in rows] == [("1", "champion"), ("2", "challenger"), ("3", "challenger")]
    assert rows[2][2] == made.reason
    assert [(a["kind"], a["model"], a["champion"], a["version"]) for a in received] == \
        [("champion_kept", "life-expectancy", "1", "3")]
    assert "could not be loaded" in received[0]["text"]

    pipeline = only_model(dataclasses.replace(WHO_BAD, pipeline="who_fast"))
    wh.release()
    listed = CliRunner().invoke(ml_app, ["models", pipeline])
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.output.splitlines() if "v3" in x.split())
    assert "challenger" in line and "champion v1 could not be loaded" in line


@pytest.mark.parametrize("missing", [False, True])
def test_a_champion_of_another_feature_set_is_replaced(settings, who_warehouse, tmp_path, missing) -> None:
    train(settings, who_warehouse, WHO_GOOD)
    if missing:  # changed features replace the champion whether or not it could be loaded
        shutil.move(_artifact_folder(settings, WHO_GOOD.name, "1"), tmp_path / "moved-away")
    wider = dataclasses.replace(WHO_GOOD, features=(*WHO_GOOD.features, "year"))

    made = train(settings, who_warehouse, wider).decision

    assert (made.version, made.decision, made.fault) == ("2", "champion", None)
    assert made.reason.startswith("champion v1 was trained on features prev_value, prev2_value, years_since_prev, "
                                  "trend_slope, n_previous, region, the model's are now ")
    assert "replaces it without comparison" in made.reason
