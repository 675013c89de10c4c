"""The MLflow store under faults (issue 23.3, 23.4): a lost store is noticed and named with
the choices (restore it, or `lakebox ml forget`); a damaged, missing, refused or unreachable
store is one line naming it and what to do, within 30 s, from the commands and from a
pipeline run. The who_gho model, real SQLite stores, real loopback sockets."""

from __future__ import annotations

import shutil
import socket
import time

import pytest
from typer.testing import CliRunner

from lakebox.lake import Lake
from lakebox.ml import predict, predict_stage, train, train_stage
from lakebox.ml.tracking import StoreError, connect
from lakebox.ml_cli import ml_app
from lakebox.runner import Pipeline, Stage, run_pipeline
from lakebox.settings import Settings
from tests.ml.conftest import WHO_GOOD


def _error_line(output: str) -> str:
    """The command's one error line (its JSON log lines aside); no traceback."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    return errors[0]


def _run_ml(settings, warehouse):
    stages = (Stage("predict", predict_stage(WHO_GOOD)), Stage("train", train_stage(WHO_GOOD)))
    return run_pipeline(Pipeline("who_fast", stages), settings, Lake.from_settings(settings), warehouse)


def test_a_lost_store_stops_with_the_choices_and_forget_starts_over(settings, who_warehouse, who_pipeline) -> None:
    wh = who_warehouse
    first = train(settings, wh, WHO_GOOD)
    assert (first.decision.version, first.decision.decision) == ("1", "champion")
    assert predict(settings, wh, WHO_GOOD).rows_scored == 1200
    store_id = wh.query("select store_id from ml.model_stores where model_name = 'life-expectancy'")[0][0]
    assert connect(settings).get_registered_model("life-expectancy").tags["lakebox.store_id"] == store_id

    (settings.home / "mlflow.db").unlink()  # the store is lost; an empty one takes its place

    with pytest.raises(StoreError) as lost:
        train(settings, wh, WHO_GOOD)
    message = str(lost.value)
    assert "\n" not in message and f"the MLflow store sqlite:///{settings.home}/mlflow.db does not hold" in message
    assert "versions up to v1" in message and "the store has no model life-expectancy" in message
    assert "restore that store" in message and "lakebox ml forget life-expectancy --reason" in message
    outcome = _run_ml(settings, wh)  # a pipeline run fails its ML stage with that line
    assert outcome.status == "failed" and outcome.error == message
    assert wh.query("select version, decision from ml.model_decisions") == [("1", "champion")]
    assert wh.query("select distinct model_version from ml.life_expectancy_predictions") == [("1",)]
    wh.release()

    runner = CliRunner()
    unknown = runner.invoke(ml_app, ["forget", "no-such-model", "--reason", "x", "--pipeline", who_pipeline])
    assert unknown.exit_code == 2 and "has no model 'no-such-model'" in _error_line(unknown.output)
    listed = runner.invoke(ml_app, ["models", who_pipeline])
    assert listed.exit_code == 1 and _error_line(listed.output) == f"error: {message}"
    forgot = runner.invoke(ml_app, ["forget", "life-expectancy", "--reason", "mlflow.db deleted by mistake"])
    assert forgot.exit_code == 0, forgot.output
    assert "history started over as generation 2" in forgot.output
    assert runner.invoke(ml_app, ["train", who_pipeline]).exit_code == 0

    rows = wh.query("select version, decision, reason from ml.model_decisions order by decided_at")
    assert [(v, d) for v, d, _ in rows] == [("1", "champion"), ("-", "forgotten"), ("1.g2", "champion")]
    assert "history started over as generation 2: mlflow.db deleted by mistake" in rows[1][2]
    assert "versions up to 1" in rows[1][2] and store_id in rows[1][2]
    stores = wh.query("select generation, store_id from ml.model_stores order by generation")
    assert [g for g, _ in stores] == [1, 2] and stores[0][1] == store_id and stores[1][1] not in (None, store_id)
    # the old predictions keep their label; the new champion's are told apart
    wh.execute("update ml.life_expectancy_features set country_code = 'N' || country_code where country_code < 'C003'")
    assert predict(settings, wh, WHO_GOOD).rows_scored == 60  # three countries' rows under new keys
    scored = wh.query("select model_version, count(*) from ml.life_expectancy_predictions group by 1 order by 1")
    assert scored == [("1", 1200), ("1.g2", 60)]
    shown = runner.invoke(ml_app, ["models", who_pipeline])
    assert shown.exit_code == 0, shown.output
    assert "life-expectancy: history generation 2 (lakebox ml forget); lakebox's tables label MLflow's version N " \
           "as N.g2" in shown.output
    assert "first version of life-expectancy" in next(x for x in shown.output.splitlines() if "v1" in x.split())


def test_a_corrupt_store_is_one_line(settings, who_warehouse, who_pipeline) -> None:
    (settings.home / "mlflow.db").write_bytes(b"not a database " * 1000)
    outcome = _run_ml(settings, who_warehouse)
    who_warehouse.release()
    assert outcome.status == "failed"
    assert outcome.error.startswith(f"MLflow store sqlite:///{settings.home}/mlflow.db is not a readable SQLite "
                                    "database (file is not a database): restore it from a backup")

    started = time.monotonic()
    result = CliRunner().invoke(ml_app, ["models", who_pipeline])
    assert result.exit_code == 1 and time.monotonic() - started < 30
    assert _error_line(result.output) == f"error: {outcome.error}"


def test_a_missing_champion_artifact_is_one_line(settings, who_warehouse, who_pipeline, tmp_path) -> None:
    train(settings, who_warehouse, WHO_GOOD)
    folder = connect(settings).get_model_version_download_uri("life-expectancy", "1").removeprefix("file://")
    shutil.move(folder, tmp_path / "moved-away")

    outcome = _run_ml(settings, who_warehouse)
    who_warehouse.release()
    assert outcome.status == "failed" and "\n" not in outcome.error
    assert outcome.error.startswith(f"model life-expectancy v1: could not be loaded from the MLflow store "
                                    f"sqlite:///{settings.home}/mlflow.db (")
    assert "restore its artifacts" in outcome.error and "lakebox ml forget life-expectancy" in outcome.error
    result = CliRunner().invoke(ml_app, ["predict", who_pipeline])
    assert result.exit_code == 1 and _error_line(result.output) == f"error: {outcome.error}"


def test_a_file_store_is_refused_as_a_setting(who_warehouse, who_pipeline, monkeypatch, tmp_path) -> None:
    who_warehouse.release()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path}/mlruns")
    result = CliRunner().invoke(ml_app, ["train", who_pipeline])
    assert result.exit_code == 2
    assert _error_line(result.output).startswith(f"error: MLFLOW_TRACKING_URI=file://{tmp_path}/mlruns is MLflow's "
                                                 "file store, which MLflow 3 refuses")
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("server", ["closed", "silent"])
def test_an_unreachable_http_store_is_one_line_within_30_s(who_warehouse, who_pipeline, monkeypatch,
                                                           server) -> None:
    with socket.socket() as listener:  # silent: accepts connections (the kernel does) and never answers
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if server == "silent":
            listener.listen(8)
        else:
            listener.close()
        uri = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        settings = Settings.load()
        started = time.monotonic()
        outcome = _run_ml(settings, who_warehouse)
        assert time.monotonic() - started < 30
        assert outcome.status == "failed"
        assert outcome.error.startswith(f"MLflow store {uri} is unreachable (")
        assert outcome.error.endswith("start the tracking server, or point MLFLOW_TRACKING_URI at one that answers")
        who_warehouse.release()
        started = time.monotonic()
        result = CliRunner().invoke(ml_app, ["models", who_pipeline])
        assert result.exit_code == 1 and time.monotonic() - started < 30
        assert _error_line(result.output) == f"error: {outcome.error}"


def test_an_intact_store_from_before_store_ids_is_adopted(settings, who_warehouse) -> None:
    wh = who_warehouse
    train(settings, wh, WHO_GOOD)
    wh.execute("drop table ml.model_stores")  # a home trained before lakebox kept store ids
    client = connect(settings)
    client.delete_registered_model_tag("life-expectancy", "lakebox.store_id")

    again = train(settings, wh, WHO_GOOD)

    assert again.decision.version == "2"
    store_id = client.get_registered_model("life-expectancy").tags["lakebox.store_id"]
    assert wh.query("select generation, store_id from ml.model_stores") == [(1, store_id)]
