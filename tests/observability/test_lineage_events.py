"""OpenLineage events from real runs: valid against the spec (2-0-2), linked parent → child,
delivered to a loopback Marquez; spooled while it is down and sent once by the next run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lakebox.lake import Lake
from lakebox.observability.lineage.events import FACET_SCHEMAS
from lakebox.ports import free_port
from lakebox.runner import run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.conftest import run_cli
from tests.observability.conftest import pipeline, with_env
from tests.observability.lineage_support import marquez, validate


def orders_env(lakebox_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {**lakebox_env, "LAKEBOX_DEMO_ORDERS": "200", "LAKEBOX_CONFIG": "off", **extra}
    env.pop("LAKEBOX_ORDERS_API_URL", None)
    return env


def file_events(home: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (home / "lineage" / "events.jsonl").read_text().splitlines()]


def spooled(home: Path) -> list[Path]:
    spool = home / "lineage" / "spool"
    return sorted(p for p in spool.glob("*.json")) if spool.is_dir() else []


def by_job(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["job"]["name"], e["eventType"]): e for e in events}


def test_a_real_orders_run_sends_valid_linked_events_to_marquez(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    with marquez() as server:
        result = run_cli("run", "orders", env=orders_env(lakebox_env, LAKEBOX_OPENLINEAGE_URL=server.url,
                                                          LAKEBOX_OPENLINEAGE_API_KEY="s3cret-token"))
        assert result.returncode == 0, result.stderr
        events = file_events(home)
        assert server.received() == events, "Marquez got every event of the file, in order"
    assert spooled(home) == []
    assert {h.get("Authorization") for h in server.headers} == {"Bearer s3cret-token"}
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:  # the anomaly rule's counts cover the pipeline's marts, found in its own folder
        marts = con.execute("select dataset from ops.table_stats where kind = 'mart'").fetchall()
    finally:
        con.close()
    assert marts == [("analytics.daily_order_metrics",)], marts
    assert "s3cret-token" not in result.stderr + (home / "lineage" / "events.jsonl").read_text()
    for event in events:
        validate(event)

    jobs = by_job(events)
    expected = ["orders", "orders.fetch", "orders.load", "orders.transform", "orders.snapshot",
                "orders.transform.staging.stg_orders", "orders.transform.analytics.daily_order_metrics"]
    for job in expected:
        assert {(job, "START"), (job, "COMPLETE")} <= jobs.keys(), job
    assert len(events) == 2 * len(expected), [(e["job"]["name"], e["eventType"]) for e in events]
    assert [e["job"]["name"] for e in events][:2] == ["orders", "orders.fetch"]
    assert (events[-1]["job"]["name"], events[-1]["eventType"]) == ("orders", "COMPLETE")

    run_id = jobs["orders", "START"]["run"]["runId"]
    assert jobs["orders", "COMPLETE"]["run"]["runId"] == run_id
    for stage in ("fetch", "load", "transform", "snapshot"):
        parent = jobs[f"orders.{stage}", "COMPLETE"]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_id and parent["job"]["name"] == "orders"
    transform_run = jobs["orders.transform", "COMPLETE"]["run"]["runId"]
    mart = jobs["orders.transform.analytics.daily_order_metrics", "COMPLETE"]
    assert mart["run"]["facets"]["parent"]["run"]["runId"] == transform_run
    assert mart["run"]["facets"]["parent"]["root"]["run"]["runId"] == run_id

    fetched = jobs["orders.fetch", "COMPLETE"]
    assert [d["name"] for d in fetched["inputs"]] == ["orders"]
    [lake_object] = fetched["outputs"]
    assert lake_object["name"].startswith("raw/orders/ingest_date=") and lake_object["namespace"].startswith("file://")
    assert lake_object["outputFacets"]["outputStatistics"]["rowCount"] == 200

    loaded = jobs["orders.load", "COMPLETE"]
    assert [d["name"] for d in loaded["inputs"]] == [lake_object["name"]]
    checks = loaded["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert checks and all(c["success"] for c in checks)
    assert {"assertion": "schema_drift", "success": True, "severity": "error", "column": "order_id"} in checks
    [raw] = loaded["outputs"]
    assert raw["name"] == "raw.orders" and raw["namespace"] == f"duckdb://{home.resolve()}/warehouse.duckdb"
    assert raw["outputFacets"]["outputStatistics"]["rowCount"] == 200
    assert {"name": "order_id", "type": "VARCHAR"} in raw["facets"]["schema"]["fields"]

    assert [d["name"] for d in mart["inputs"]] == ["staging.stg_orders"]
    [out] = mart["outputs"]
    assert out["name"] == "analytics.daily_order_metrics"
    assert [f["name"] for f in out["facets"]["schema"]["fields"]][:3] == ["order_date", "total_orders", "total_amount"]
    assert "group by order_date" in mart["job"]["facets"]["sql"]["query"]
    staging = jobs["orders.transform.staging.stg_orders", "COMPLETE"]
    assert [d["name"] for d in staging["inputs"]] == ["raw.orders"]
    assert staging["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 200


def test_with_the_endpoint_down_events_spool_and_the_next_run_sends_them_once(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    down = f"http://127.0.0.1:{free_port()}"
    first = run_cli("run", "orders", env=orders_env(lakebox_env, LAKEBOX_OPENLINEAGE_URL=down))
    assert first.returncode == 0, first.stderr
    first_events = file_events(home)
    assert [json.loads(p.read_bytes()) for p in spooled(home)] == first_events
    assert "events spooled" in first.stderr

    with marquez() as server:
        second = run_cli("run", "orders", env=orders_env(lakebox_env, LAKEBOX_OPENLINEAGE_URL=server.url))
        assert second.returncode == 0, second.stderr
        received = server.received()
    everything = file_events(home)
    assert len(everything) > len(first_events)
    assert received == everything, "the first run's events, then the second's, each once and in order"
    assert spooled(home) == []


def test_a_refusing_endpoint_is_reported_once_and_flush_sends_the_spool_later(
        settings: Settings, lakebox_env: dict[str, str]) -> None:
    with marquez() as server:
        server.statuses = [(400, b'{"code":400,"message":"job.name must not be blank"}')]
        refused = with_env(settings, LAKEBOX_OPENLINEAGE_URL=server.url)
        with open_warehouse(refused) as wh:
            outcome = run_pipeline(pipeline("shop"), refused, Lake.from_settings(refused), wh)
        assert outcome.status == "success", "lineage never fails a run"
        assert server.received() == []
        kept = spooled(settings.home)
        assert len(kept) == 6  # the run's and its two stages' START and COMPLETE
        logged = (settings.logs_dir).glob("*")
        warnings = [line for p in logged for line in p.read_text().splitlines() if "refused an event" in line]
        assert len(warnings) == 1 and "job.name must not be blank" in warnings[0]

        flushed = run_cli("lineage", "flush", env={**lakebox_env, "LAKEBOX_OPENLINEAGE_URL": server.url})
        assert flushed.returncode == 0, flushed.stderr
        assert server.received() == [json.loads(p) for p in
                                     (settings.home / "lineage" / "events.jsonl").read_text().splitlines()]
    assert spooled(settings.home) == []


def test_a_slow_endpoint_costs_a_run_at_most_a_second(settings: Settings) -> None:
    import http.server
    import threading

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(3)
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        slow = with_env(settings, LAKEBOX_OPENLINEAGE_URL=f"http://127.0.0.1:{server.server_address[1]}")
        with open_warehouse(slow) as wh:
            t0 = time.perf_counter()
            run_pipeline(pipeline("shop"), settings, Lake.from_settings(settings), wh)  # the same run, no endpoint
            t1 = time.perf_counter()
            outcome = run_pipeline(pipeline("shop"), slow, Lake.from_settings(slow), wh)
            t2 = time.perf_counter()
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.status == "success"
    waited = (t2 - t1) - (t1 - t0)
    assert waited < 1.3, f"the run waited {waited:.2f} s on a slow endpoint"
    assert len(spooled(settings.home)) >= 5, "what was not acknowledged stays spooled"
    assert len(file_events(settings.home)) == 12, "both runs are in the file"


def test_a_malformed_openlineage_url_is_a_settings_error(lakebox_env: dict[str, str]) -> None:
    result = run_cli("run", "orders", env=orders_env(lakebox_env, LAKEBOX_OPENLINEAGE_URL="marquez:5000"))
    assert result.returncode == 2, result.stderr
    assert "LAKEBOX_OPENLINEAGE_URL" in result.stderr
    assert not (Path(lakebox_env["LAKEBOX_HOME"]) / "lineage").exists()


def test_lineage_off_writes_nothing(settings: Settings) -> None:
    off = with_env(settings, LAKEBOX_LINEAGE="off")
    with open_warehouse(off) as wh:
        assert run_pipeline(pipeline("shop"), off, Lake.from_settings(off), wh).status == "success"
    assert not (settings.home / "lineage").exists()


@pytest.mark.parametrize("facet", sorted(FACET_SCHEMAS))
def test_facet_versions_are_those_the_openlineage_client_stamps(facet: str) -> None:
    from openlineage.client.generated import (
        column_lineage_dataset,
        data_quality_assertions_dataset,
        error_message_run,
        job_type_job,
        output_statistics_output_dataset,
        parent_run,
        schema_dataset,
        sql_job,
    )

    client = {
        "parent": parent_run.ParentRunFacet, "errorMessage": error_message_run.ErrorMessageRunFacet,
        "jobType": job_type_job.JobTypeJobFacet,
        "sql": sql_job.SQLJobFacet, "schema": schema_dataset.SchemaDatasetFacet,
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet,
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    }[facet]
    assert "https://openlineage.io/spec/facets/" + FACET_SCHEMAS[facet] == client._get_schema()



def test_a_real_retail_run_emits_valid_events_for_every_file_kind_and_model(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    env = {**lakebox_env, "LAKEBOX_CONFIG": "off"}
    gen = run_cli("retail-generate", "--stores", "6", "--months", "1", "--seed", "3", "--start", "2025-03-01", env=env)
    assert gen.returncode == 0, gen.stderr
    run = run_cli("run", "retail", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    events = file_events(home)
    for event in events:
        validate(event)
    jobs = by_job(events)
    run_id = jobs["retail", "START"]["run"]["runId"]
    landed = jobs["retail.land", "COMPLETE"]
    assert landed["run"]["facets"]["parent"]["run"]["runId"] == run_id
    assert {d["name"] for d in landed["inputs"]} >= {"daily_sales_2025-03-01.csv", "stores.csv"} or \
        any(d["name"].startswith("daily_sales_") for d in landed["inputs"])
    assert all(d["namespace"].endswith("/landing/retail") for d in landed["inputs"])
    loaded = {d["name"]: d["outputFacets"]["outputStatistics"]["rowCount"]
              for d in jobs["retail.load", "COMPLETE"]["outputs"]}
    assert set(loaded) == {"raw.retail_daily_sales", "raw.retail_inventory", "raw.retail_promotions",
                           "raw.retail_stores"}
    assert loaded["raw.retail_stores"] == 6
    models = [name for name, kind in jobs if kind == "COMPLETE" and name.startswith("retail.transform.")]
    assert "retail.transform.analytics.store_daily_performance" in models and len(models) >= 8
    for name in models:
        [out] = jobs[name, "COMPLETE"]["outputs"]
        assert out["facets"]["columnLineage"]["fields"], f"{name} has no column lineage"


@pytest.mark.timeout(180)
def test_a_run_stopped_by_sigterm_emits_fail_for_the_run_and_the_stage_under_way(
        lakebox_env: dict[str, str]) -> None:
    """A real `lakebox run orders` sent SIGTERM once dbt's transform stage has started."""
    import signal
    import subprocess
    import sys

    home = Path(lakebox_env["LAKEBOX_HOME"])
    env = orders_env(lakebox_env)
    child = subprocess.Popen([sys.executable, "-m", "lakebox.cli", "run", "orders"], env=env, cwd=env.get("PWD"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    seen = []
    for line in child.stderr:
        seen.append(line)
        if '"stage started"' in line and '"stage": "transform"' in line.replace('":"', '": "'):
            break
    else:
        raise AssertionError("the run ended before its transform stage started:\n" + "".join(seen))
    child.send_signal(signal.SIGTERM)
    _, rest = child.communicate(timeout=120)
    assert child.returncode == 143, "".join(seen) + rest

    events = file_events(home)
    for event in events:
        validate(event)
    jobs = by_job(events)
    assert ("orders", "COMPLETE") not in jobs and ("orders.transform", "COMPLETE") not in jobs
    run_fail, stage_fail = jobs["orders", "FAIL"], jobs["orders.transform", "FAIL"]
    assert run_fail["run"]["facets"]["errorMessage"]["message"] == "interrupted by SIGTERM"
    assert stage_fail["run"]["facets"]["errorMessage"]["message"] == "interrupted by SIGTERM"
    assert stage_fail["run"]["runId"] == jobs["orders.transform", "START"]["run"]["runId"]
    assert stage_fail["run"]["facets"]["parent"]["run"]["runId"] == run_fail["run"]["runId"]
    assert [e["eventType"] for e in events if e["job"]["name"] == "orders"] == ["START", "FAIL"]
    assert jobs["orders.load", "COMPLETE"]["run"]["facets"]["parent"]["run"]["runId"] == run_fail["run"]["runId"]
