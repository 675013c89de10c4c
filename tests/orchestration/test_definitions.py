"""The Dagster definitions generated from the pipelines, and runs executed in-process
through them: the audit rows are lakebox's own, the Dagster run carries the lakebox run id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakebox.orchestration import graph as g
from lakebox.pipelines import discover
from tests.orchestration.conftest import DAGSTER_WARNINGS, break_first_sale, drop_days, query

pytestmark = DAGSTER_WARNINGS


def _instance(tmp_path: Path):
    """An ephemeral Dagster instance whose files live in the test's folder (Dagster's own
    temporary folder would be cleaned up by the garbage collector, with a warning)."""
    import dagster as dg

    return dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))


def _defs():
    from lakebox.orchestration.dagster import build_definitions

    return build_definitions()


def test_lakebox_run_never_imports_dagster() -> None:
    code = ("import sys; import lakebox.cli; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(lakebox.cli.app, ['run', '--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dagster_celery', 'mlflow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_every_pipeline_has_its_assets_checks_and_triggers(monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    monkeypatch.setenv("LAKEBOX_ORDERS_SCHEDULE", "*/15 * * * *")
    defs = _defs()
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    checks = {(c.asset_key.to_user_string(), c.name) for c in repo.asset_graph.asset_check_keys}
    sensors = {s.name: s for s in repo.sensor_defs}
    schedules = {s.name: s for s in repo.schedule_defs}
    specs = discover()
    assert {"orders", "retail"} <= set(specs)
    for name, spec in specs.items():
        graph = g.build_graph(spec)
        job = repo.get_job(f"{name}_job")
        assert job.tags["lakebox/pipeline"] == name
        for mart in spec.marts:
            assert mart.replace(".", "/") in keys
        assert {n.name.replace(".", "/") for n in graph.nodes} <= keys
        assert {n.layer for n in graph.nodes} >= {g.SOURCE, g.RAW, g.STAGING, g.MARTS}
        assert {(n.name.replace(".", "/"), g.GATE_CHECK) for n in graph.layer(g.RAW)} <= checks
        assert (spec.marts[0].replace(".", "/"), g.DBT_CHECK) in checks
        # lineage runs source → raw → staging → marts
        for mart in graph.layer(g.MARTS):
            upstream = repo.asset_graph.get(dg.AssetKey(list(mart.key))).parent_keys
            assert upstream and all(k.path[0] in ("staging", "analytics") for k in upstream)
        if spec.waiting_input is None:
            assert schedules[f"{name}_schedule"].cron_schedule == ("*/15 * * * *" if name == "orders" else "0 * * * *")
        else:
            assert f"{name}_new_drop" in sensors
            assert job.partitions_def is not None
    assert {"lakebox_run_failed_alert", "lakebox_failed_check_alert"} <= set(sensors)
    monkeypatch.setenv("LAKEBOX_ORDERS_SCHEDULE", "off")
    assert "orders_schedule" not in {s.name for s in _defs().get_repository_def().schedule_defs}


@pytest.mark.slow
def test_orders_materialize_in_process_with_lakebox_audit_rows(tmp_path: Path, lakebox_env: dict[str, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("LAKEBOX_DEMO_ORDERS", "500")
    instance = _instance(tmp_path)
    result = _defs().resolve_job_def("orders_job").execute_in_process(instance=instance)
    assert result.success
    home = Path(lakebox_env["LAKEBOX_HOME"])
    lakebox_run = instance.get_run_by_id(result.run_id).tags["lakebox/run_id"]
    assert query(home, "select run_id, pipeline, status, rows_in from ops.pipeline_runs") == [
        (lakebox_run, "orders", "success", 500)]
    assert [r[0] for r in query(home, "select stage from ops.stage_runs where run_id = ? order by started_at",
                                [lakebox_run])] == ["fetch", "load", "transform", "snapshot"]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw/orders", "staging/stg_orders", "analytics/daily_order_metrics"}
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed
                   for e in result.get_asset_check_evaluations()}
    assert evaluations == {("raw/orders", g.GATE_CHECK): True, ("raw/orders", g.QUARANTINE_CHECK): True,
                           ("staging/stg_orders", g.DBT_CHECK): True, ("analytics/daily_order_metrics", g.DBT_CHECK): True}
    assert instance.get_run_by_id(result.run_id).tags["lakebox/status"] == "success"
    # the Dagster run id is on every log line of the lakebox run
    logs = [json.loads(line) for f in (home / "logs").glob("*.jsonl") for line in f.read_text().splitlines()]
    mine = [line for line in logs if line.get("run_id") == lakebox_run]
    assert mine and all(line.get("dagster_run_id") == result.run_id for line in mine)


@pytest.mark.slow
def test_a_retail_day_partition_loads_that_days_files(tmp_path: Path, lakebox_env: dict[str, str],
                                                      generated_drop: Path) -> None:

    home = Path(lakebox_env["LAKEBOX_HOME"])
    drop_days(generated_drop, home / "landing" / "retail", "2025-03-04", "2025-03-05")
    instance = _instance(tmp_path)
    result = _defs().resolve_job_def("retail_job").execute_in_process(instance=instance, partition_key="2025-03-05")
    assert result.success
    lakebox_run = instance.get_run_by_id(result.run_id).tags["lakebox/run_id"]
    assert query(home, "select pipeline, status from ops.pipeline_runs where run_id = ?", [lakebox_run]) == [
        ("retail", "success")]
    files = sorted(json.loads(m)["file"] for (m,) in query(home, "select meta from ops.batches"))
    assert {"daily_sales_2025-03-05.csv", "inventory_2025-03-05.csv", "stores.csv"} <= set(files)
    assert all(f == "stores.csv" or "2025-03-05" in f for f in files)  # the 4th waits for its own partition
    assert query(home, "select distinct date from analytics.store_daily_performance") == [
        (__import__("datetime").date(2025, 3, 5),)]
    materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    assert ("analytics/store_insights", "2025-03-05") in materialized


@pytest.mark.slow
def test_a_failed_gate_blocks_downstream_assets_and_alerts(tmp_path: Path, lakebox_env: dict[str, str], generated_drop: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from lakebox.orchestration.dagster import run_failed_alert

    monkeypatch.setenv("LAKEBOX_RETAIL_POLICY", "fail-fast")
    home = Path(lakebox_env["LAKEBOX_HOME"])
    landing = home / "landing" / "retail"
    drop_days(generated_drop, landing, "2025-03-06")
    break_first_sale(landing / "daily_sales_2025-03-06.csv")

    instance = _instance(tmp_path)
    result = _defs().resolve_job_def("retail_job").execute_in_process(
        instance=instance, partition_key="2025-03-06", raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    lakebox_run = run.tags["lakebox/run_id"]
    assert query(home, "select status from ops.pipeline_runs where run_id = ?", [lakebox_run]) == [("failed",)]
    materialized = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert not materialized & {"staging", "analytics"}
    gate = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations() if e.check_name == g.GATE_CHECK}
    assert gate["raw/retail_daily_sales"].passed is False
    assert not query(home, "select * from information_schema.tables where table_schema = 'analytics'")

    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="lakebox_run_failed_alert", dagster_event=failure, dagster_instance=instance, dagster_run=run,
    ).for_run_failure()
    run_failed_alert(context)
    alerts = [json.loads(line) for f in (home / "logs").glob("*.jsonl") for line in f.read_text().splitlines()
              if '"alert"' in line]
    assert len(alerts) == 1 and alerts[0]["level"] == "error"
    assert alerts[0]["lakebox_run_id"] == lakebox_run and alerts[0]["dagster_run_id"] == result.run_id
    assert "raw/retail_daily_sales:quality_gate" in alerts[0]["failed_checks"]
    assert "daily_sales_2025-03-06.csv" in alerts[0]["error"]


@pytest.mark.slow
def test_a_partial_run_succeeds_with_a_failed_check_and_alerts(tmp_path: Path, lakebox_env: dict[str, str],
                                                               generated_drop: Path) -> None:
    import dagster as dg

    from lakebox.orchestration.dagster import failed_check_alert

    home = Path(lakebox_env["LAKEBOX_HOME"])
    landing = home / "landing" / "retail"
    drop_days(generated_drop, landing, "2025-03-06")
    break_first_sale(landing / "daily_sales_2025-03-06.csv")
    instance = _instance(tmp_path)
    job = _defs().resolve_job_def("retail_job")
    result = job.execute_in_process(instance=instance, partition_key="2025-03-06")
    assert result.success  # good input reached the marts; the bad file waits in quarantine
    run = instance.get_run_by_id(result.run_id)
    assert query(home, "select status from ops.pipeline_runs where run_id = ?", [run.tags["lakebox/run_id"]]) == [
        ("partial",)]
    assert run.tags["lakebox/status"] == "partial"  # lakebox's word on the run, beside Dagster's green
    checks = _checks(result)
    assert checks[("raw/retail_daily_sales", g.GATE_CHECK)] == (False, "ERROR")
    assert checks[("raw/retail_inventory", g.GATE_CHECK)] == (True, "ERROR")
    assert checks[("raw/retail_daily_sales", g.QUARANTINE_CHECK)] == (False, "WARN")
    assert checks[("raw/retail_inventory", g.QUARANTINE_CHECK)] == (True, "WARN")
    assert "analytics/store_insights" in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}

    success = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
    failed_check_alert(dg.build_run_status_sensor_context(
        sensor_name="lakebox_failed_check_alert", dagster_event=success, dagster_instance=instance, dagster_run=run))
    alerts = [json.loads(line) for f in (home / "logs").glob("*.jsonl") for line in f.read_text().splitlines()
              if '"alert"' in line]
    assert [a["alert"] for a in alerts] == ["checks failed"]
    assert alerts[0]["failed_checks"] == ["raw/retail_daily_sales:quality_gate"]  # the open item warns, not alerts

    # the next day's good drop: every gate check passes, yet the item stays open and the run is partial
    drop_days(generated_drop, landing, "2025-03-07", stores=False)
    later = job.execute_in_process(instance=instance, partition_key="2025-03-07")
    assert later.success and instance.get_run_by_id(later.run_id).tags["lakebox/status"] == "partial"
    checks = _checks(later)
    assert {passed for (_, name), (passed, _) in checks.items() if name == g.GATE_CHECK} == {True}
    assert checks[("raw/retail_daily_sales", g.QUARANTINE_CHECK)] == (False, "WARN")
    [evaluation] = [e for e in later.get_asset_check_evaluations()
                    if e.check_name == g.QUARANTINE_CHECK and not e.passed]
    [item] = evaluation.metadata["failures"].value
    assert query(home, "select status, opened_run_id from ops.quarantine where id = ?", [item["item_id"]]) == [
        ("open", run.tags["lakebox/run_id"])]


def _checks(result) -> dict[tuple[str, str], tuple[bool, str]]:
    return {(e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity.value)
            for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_the_drop_sensor_asks_for_one_run_per_new_drop(tmp_path: Path, lakebox_env: dict[str, str],
                                                       generated_drop: Path) -> None:
    import dagster as dg

    repo = _defs().get_repository_def()
    sensor = repo.get_sensor_def("retail_new_drop")
    landing = Path(lakebox_env["LAKEBOX_HOME"]) / "landing" / "retail"
    instance = _instance(tmp_path)
    cursor = None

    def evaluate() -> list[dg.RunRequest]:
        nonlocal cursor
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repo))
        cursor = data.cursor
        return list(data.run_requests or [])

    assert evaluate() == []  # nothing waiting
    drop_days(generated_drop, landing, "2025-03-07")
    assert evaluate() == []  # a new listing: wait one look for it to stay still
    [request] = evaluate()
    assert request.partition_key == "2025-03-07" and request.tags["lakebox/pipeline"] == "retail"
    assert "daily_sales_2025-03-07.csv" in request.tags["lakebox/files"]
    assert evaluate() == [] and evaluate() == []  # the same drop: once
    drop_days(generated_drop, landing, "2025-03-08", stores=False)
    assert evaluate() == []
    [second] = evaluate()
    assert second.partition_key == "2025-03-08" and second.run_key != request.run_key
    assert "stores.csv" not in second.tags["lakebox/files"]  # unchanged: not part of the new drop


def test_asset_names_are_unique_and_say_what_they_are() -> None:
    """Dagster's graph shows an asset's last name only: `source/orders` beside `raw/orders` were two `orders`."""
    keys = [n.key for spec in discover().values() for n in g.build_graph(spec).nodes]
    names = [table for _, table in keys]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    sources = {table for schema, table in keys if schema == g.SOURCE}
    assert {"orders_api", "github_commits_api", "retail_landing"} <= sources


@pytest.mark.slow
def test_after_lakebox_run_the_sensors_start_from_what_it_loaded(tmp_path: Path, lakebox_env: dict[str, str],
                                                                  generated_drop: Path) -> None:
    """`lakebox run retail` outside Dagster (as `make demo` does), then the first serve's sensors:
    no run for the drops already loaded, the run shown on the assets, one run for a new drop."""
    import dagster as dg

    from lakebox.orchestration.drops import LANDING_SEEN
    from lakebox.pipelines.retail.source import SEEN_STATE

    assert LANDING_SEEN == SEEN_STATE
    home = Path(lakebox_env["LAKEBOX_HOME"])
    landing = home / "landing" / "retail"
    drop_days(generated_drop, landing, "2025-03-02", "2025-03-03", "2025-03-04")
    out = subprocess.run([sys.executable, "-m", "lakebox.cli", "run", "retail"], env=lakebox_env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    [(outside_run, status)] = query(home, "select run_id, status from ops.pipeline_runs")
    assert status == "success"

    repo = _defs().get_repository_def()
    instance = _instance(tmp_path)
    cursors: dict[str, str | None] = {}

    def tick(name: str) -> dg.SensorExecutionData:
        data = repo.get_sensor_def(name).evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=cursors.get(name), repository_def=repo))
        cursors[name] = data.cursor
        return data

    # the drop sensor's first looks (a fresh cursor): three days loaded already, nothing to run
    assert list(tick("retail_new_drop").run_requests or []) == []
    assert list(tick("retail_new_drop").run_requests or []) == []

    # the run made outside Dagster, on the assets it built, with its id, status and rows
    tick("lakebox_runs_outside_dagster")
    insights = _materializations(instance, "analytics/store_insights")
    assert len(insights) == 1
    assert insights[0].metadata["lakebox_run_id"].value == outside_run
    assert insights[0].metadata["lakebox_status"].value == "success"
    assert insights[0].metadata["stage_rows_out"].value > 0
    assert len(_materializations(instance, "raw/retail_daily_sales")) == 1
    gate = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(["raw", "retail_daily_sales"]), g.GATE_CHECK), limit=10)
    assert [r.status.value for r in gate] == ["SUCCEEDED"]
    tick("lakebox_runs_outside_dagster")
    assert len(_materializations(instance, "analytics/store_insights")) == 1  # reported once

    # a new drop: exactly one run, for its day
    drop_days(generated_drop, landing, "2025-03-05", stores=False)
    assert list(tick("retail_new_drop").run_requests or []) == []  # waits one look for it to stay still
    [request] = list(tick("retail_new_drop").run_requests or [])
    assert request.partition_key == "2025-03-05"
    assert sorted(request.tags["lakebox/files"].split(",")) == ["daily_sales_2025-03-05.csv", "inventory_2025-03-05.csv"]

    # a run made through Dagster is Dagster's own record: the sensor does not report it again
    result = repo.get_job("retail_job").execute_in_process(instance=instance, partition_key="2025-03-05")
    assert result.success
    assert len(_materializations(instance, "analytics/store_insights")) == 2
    tick("lakebox_runs_outside_dagster")
    assert len(_materializations(instance, "analytics/store_insights")) == 2


def _materializations(instance, key: str) -> list:
    import dagster as dg

    records = instance.fetch_materializations(dg.AssetKey(key.split("/")), limit=100).records
    return [r.asset_materialization for r in records]
