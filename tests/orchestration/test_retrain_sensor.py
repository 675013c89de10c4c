"""`lakebox serve`'s retraining sensor (issue 21.5): its evaluation asks for one retraining
run when drift is flagged against the champion, the job retrains with the trigger recorded,
and the next evaluation asks for nothing. Dagster's own build_sensor_context and an
ephemeral instance; real DuckDB and a real MLflow SQLite store in the test's home."""

from __future__ import annotations

import dagster as dg
import pytest

from lakebox.ml import predict, specs, tables, train
from lakebox.ml.tracking import connect
from lakebox.orchestration.dagster import PIPELINE_TAG, TRIGGER_TAG, retrain_job, retrain_sensor
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.ml.conftest import WHO_BAD, WHO_FEATURES_SQL, WHO_GOOD
from tests.orchestration.conftest import DAGSTER_WARNINGS

pytestmark = DAGSTER_WARNINGS


def _flag_drift(wh) -> None:
    """ml.drift_report flags region now (after the champion was registered)."""
    tables.ensure(wh, tables.DRIFT_REPORT)
    wh.execute("insert into ml.drift_report select ?, 'region', 'chi2', 40, 0.0001, 0.01, true, null, null, "
               "timezone('UTC', now())::timestamp", [WHO_GOOD.name])


def test_the_sensor_asks_for_one_retraining_on_drift_and_not_again(lakebox_env, monkeypatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "LAKEBOX_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(specs, "_registered", {})
    specs.register_spec(WHO_BAD)  # what the job retrains: the pipeline's model, one quick candidate
    settings = Settings.load()
    with open_warehouse(settings) as wh:
        wh.execute(WHO_FEATURES_SQL)
        assert train(settings, wh, WHO_GOOD).decision.decision == "champion"
        predict(settings, wh, WHO_GOOD)
    sensor = retrain_sensor(lambda: [WHO_BAD])
    instance = dg.DagsterInstance.ephemeral()

    quiet = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert quiet.run_requests == [] and "no retraining trigger due for 1 model(s)" in (quiet.skip_message or "")

    with open_warehouse(settings) as wh:
        _flag_drift(wh)
    asked = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert len(asked.run_requests) == 1
    request = asked.run_requests[0]
    assert request.tags[TRIGGER_TAG] == "life-expectancy:drift:v1"
    config = request.run_config["ops"]["retrain_model"]["config"]
    assert (config["pipeline"], config["model"], config["kind"]) == ("who_gho", "life-expectancy", "drift")

    ran = retrain_job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    assert ran.success
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert again.run_requests == []
    assert len(connect(settings).search_model_versions(f"name = '{WHO_GOOD.name}'")) == 2
    with open_warehouse(settings) as wh:
        assert wh.query("select kind, evidence, version from ml.model_triggers") == [("drift", "v1", "2")]
        assert wh.query("select decided_by from ml.model_decisions where version = '2'") == [("trigger:drift",)]


@dg.op
def _noop() -> None:
    pass


@dg.job
def _pipeline_job() -> None:
    _noop()


@pytest.mark.parametrize(("job", "status", "asked"), [
    (retrain_job, dg.DagsterRunStatus.NOT_STARTED, 0), (retrain_job, dg.DagsterRunStatus.STARTED, 0),
    (retrain_job, dg.DagsterRunStatus.FAILURE, 1),  # failed: the trigger is still due, asked again
    (_pipeline_job, dg.DagsterRunStatus.STARTED, 0),  # a run of the model's pipeline: looked at after it
    (_pipeline_job, dg.DagsterRunStatus.SUCCESS, 1),
])
def test_a_retraining_run_is_asked_for_once_and_not_beside_a_run_of_its_pipeline(
        lakebox_env, monkeypatch, job, status, asked) -> None:
    for name in ("MLFLOW_TRACKING_URI", "LAKEBOX_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    with open_warehouse(settings) as wh:
        wh.execute(WHO_FEATURES_SQL)
        train(settings, wh, WHO_GOOD)
        _flag_drift(wh)
    instance = dg.DagsterInstance.ephemeral()
    sensor = retrain_sensor(lambda: [WHO_BAD])
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).run_requests
    assert len(first) == 1
    if job is retrain_job:
        instance.create_run_for_job(retrain_job, run_config=first[0].run_config, tags=first[0].tags, status=status)
    else:
        instance.create_run_for_job(job, tags={PIPELINE_TAG: "who_gho"}, status=status)
    assert len(sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).run_requests) == asked
