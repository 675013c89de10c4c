"""`lakebox run orders` end to end: the real CLI against the real API on loopback, the real
DuckDB warehouse and the real dbt build."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from lakebox.pipelines.orders.api import create_app, serve_in_thread
from lakebox.pipelines.orders.generator import generate_orders
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
SEED = 11


@pytest.fixture(scope="module")
def api_1000() -> Iterator[str]:
    with serve_in_thread(create_app(orders=1000, seed=SEED)) as server:
        yield server.url


@pytest.fixture(scope="module")
def api_1100() -> Iterator[str]:
    with serve_in_thread(create_app(orders=1100, seed=SEED)) as server:
        yield server.url


def orders_env(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "LAKEBOX_ORDERS_API_URL": url, "LAKEBOX_ORDERS_PAGE_SIZE": "300"}


def q(env: dict[str, str], sql: str) -> list[tuple]:
    con = duckdb.connect(str(Path(env["LAKEBOX_HOME"]) / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def raw_rows(env: dict[str, str]) -> int:
    """Rows in raw.orders; 0 when no batch was ever loaded (the table comes with the first load)."""
    exists = q(env, "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = 'orders'")
    return q(env, "select count(*) from raw.orders")[0][0] if exists[0][0] else 0


def set_fault(url: str, **fault: object) -> None:
    httpx.post(f"{url}/_faults", json=fault).raise_for_status()


def clear_faults(url: str) -> None:
    httpx.delete(f"{url}/_faults").raise_for_status()


@pytest.fixture(scope="module")
def clean_home(tmp_path_factory: pytest.TempPathFactory, api_1000: str) -> Path:
    """One good run of 1000 orders, copied by the tests that start from it."""
    base = tmp_path_factory.mktemp("clean")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("LAKEBOX_") or k == "LAKEBOX_CACHE_DIR"}
    env.update(LAKEBOX_HOME=str(base / "home"), LAKEBOX_HTTP_BACKOFF="0.01", LAKEBOX_HTTP_MAX_DELAY="0.2")
    result = run_cli("run", "orders", env=orders_env(env, api_1000))
    assert result.returncode == 0, result.stderr
    return base / "home"


@pytest.fixture
def home_from_clean(clean_home: Path, lakebox_env: dict[str, str]) -> dict[str, str]:
    shutil.copytree(clean_home, lakebox_env["LAKEBOX_HOME"])
    return lakebox_env


def test_happy_path_builds_every_layer(clean_home: Path, api_1000: str) -> None:
    env = {"LAKEBOX_HOME": str(clean_home)}
    expected = generate_orders(1000, SEED)
    assert q(env, "select count(*), count(distinct order_id) from raw.orders") == [(1000, 1000)]
    assert q(env, "select count(*) from staging.stg_orders") == [(1000,)]
    (orders, amount), = q(env, "select sum(total_orders), sum(total_amount) from analytics.daily_order_metrics")
    assert orders == 1000
    assert float(amount) == pytest.approx(sum(expected.column("amount").to_pylist()), abs=0.01)
    assert q(env, "select count(*) from analytics.daily_order_metrics") == [
        (len({t.date() for t in expected.column("created_at").to_pylist()}),)
    ]
    assert q(env, "select status from ops.pipeline_runs") == [("success",)]
    assert q(env, "select stage from ops.stage_runs order by started_at") == [
        ("fetch",), ("load",), ("transform",), ("snapshot",)
    ]
    assert q(env, "select count(*), bool_and(passed) from ops.dq_results")[0][1] is True
    batches = q(env, "select status, sum(rows) from ops.batches group by 1")
    assert batches == [("loaded", 1000)]
    # every raw row points at its batch's file in the lake, kept as received
    lake = clean_home / "lake"
    for batch_id, path in q(env, "select distinct batch_id, lake_path from raw.orders"):
        body = orjson.loads((lake / path).read_bytes())
        assert len(body["records"]) == q(env, f"select count(*) from raw.orders where batch_id = '{batch_id}'")[0][0]
    snapshots = list((lake / "snapshots" / "daily_order_metrics").glob("snapshot_date=*/*.parquet"))
    assert len(snapshots) == 1
    assert duckdb.sql(f"select count(*) from '{snapshots[0]}'").fetchall()[0][0] == q(
        env, "select count(*) from analytics.daily_order_metrics")[0][0]
    logs = list((clean_home / "logs").glob("*.jsonl"))
    lines = [orjson.loads(line) for line in logs[0].read_text().splitlines()]
    assert any(line.get("stage") == "load" and line["msg"] == "batches loaded" for line in lines)
    assert all({"ts", "level", "msg"} <= set(line) for line in lines)


def test_rerun_with_nothing_new_adds_nothing(home_from_clean: dict[str, str], api_1000: str) -> None:
    env = home_from_clean
    before = q(env, "select count(*) from ops.batches where status = 'loaded' and rows > 0")
    result = run_cli("run", "orders", env=orders_env(env, api_1000))
    assert result.returncode == 0, result.stderr
    assert q(env, "select count(*) from raw.orders") == [(1000,)]
    assert q(env, "select count(*) from ops.batches where status = 'loaded' and rows > 0") == before
    assert q(env, "select sum(total_orders) from analytics.daily_order_metrics") == [(1000,)]
    assert "dbt skipped" in result.stderr  # nothing arrived: no dbt start-up paid
    status = run_cli("status", env=env)
    assert status.returncode == 0 and status.stdout.count("success") == 2


def test_updates_show_latest_state_in_staging(home_from_clean: dict[str, str], api_1100: str) -> None:
    env = home_from_clean
    result = run_cli("run", "orders", env=orders_env(env, api_1100))
    assert result.returncode == 0, result.stderr
    latest = generate_orders(1100, SEED).to_pylist()
    staged = {r[0]: r[1:] for r in q(env, "select order_id, status, updated_at from staging.stg_orders")}
    assert len(staged) == 1100
    for row in latest:
        assert staged[row["order_id"]][0] == row["status"]
    new_rows = q(env, "select count(*) from raw.orders")[0][0] - 1000
    assert 100 < new_rows < 1100, "the second run fetched only new or updated orders"
    assert q(env, "select sum(total_orders) from analytics.daily_order_metrics") == [(1100,)]
    changed = q(env, "select count(*) from raw.orders group by order_id having count(*) > 1")
    assert changed, "some earlier orders were updated"


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "429", "count": 2, "retry_after": 0},
        {"kind": "500", "count": 2},
        {"kind": "slow", "count": 1, "delay": 1.5},
    ],
    ids=["429", "500", "slow"],
)
def test_transient_faults_are_retried_then_recover(lakebox_env: dict[str, str], api_1000: str, fault: dict) -> None:
    set_fault(api_1000, **fault)
    try:
        env = {**orders_env(lakebox_env, api_1000), "LAKEBOX_HTTP_TIMEOUT": "0.5"}
        result = run_cli("run", "orders", env=env)
    finally:
        clear_faults(api_1000)
    assert result.returncode == 0, result.stderr
    assert "retrying" in result.stderr
    assert q(lakebox_env, "select count(*), count(distinct order_id) from raw.orders") == [(1000, 1000)]


@pytest.mark.parametrize("kind", ["429", "500", "slow"])
def test_persistent_faults_fail_clearly_and_load_nothing(lakebox_env: dict[str, str], api_1000: str, kind: str) -> None:
    set_fault(api_1000, kind=kind, count=-1, retry_after=0, delay=1.0)
    try:
        env = {**orders_env(lakebox_env, api_1000), "LAKEBOX_HTTP_TIMEOUT": "0.3", "LAKEBOX_HTTP_MAX_ATTEMPTS": "3"}
        result = run_cli("run", "orders", env=env)
    finally:
        clear_faults(api_1000)
    assert result.returncode == 1
    assert "source orders" in result.stderr and "after 3 attempts" in result.stderr
    assert q(lakebox_env, "select status from ops.pipeline_runs") == [("failed",)]
    assert raw_rows(lakebox_env) == 0
    assert q(lakebox_env, "select count(*) from ops.batches") == [(0,)]
    assert q(lakebox_env, "select count(*) from information_schema.tables where table_schema = 'analytics'") == [(0,)]


BAD_DATA = {
    "rename_field": ("schema_drift", "amount"),
    "missing_field": ("schema_drift", "customer_id"),
    "null_ids": ("not_null", "order_id"),
    "negative_amount": ("min", "amount"),
    "duplicate_ids": ("unique", "order_id"),
    "unknown_status": ("accepted_values", "status"),
    "malformed": ("parse", None),  # cured by the retry: nothing quarantined
}


@pytest.mark.parametrize("kind", list(BAD_DATA))
def test_bad_data_is_quarantined_nothing_lost_good_pages_reach_the_marts(
    home_from_clean: dict[str, str], api_1100: str, kind: str
) -> None:
    env = home_from_clean
    raw_before = q(env, "select count(*) from raw.orders")[0][0]
    set_fault(api_1100, kind=kind, count=1)
    try:  # small pages, so the run fetches several and only the first is bad
        result = run_cli("run", "orders", env={**orders_env(env, api_1100), "LAKEBOX_ORDERS_PAGE_SIZE": "40"})
    finally:
        clear_faults(api_1100)
    rule, column = BAD_DATA[kind]
    if kind == "malformed":  # unreadable once, then fetched fine on retry: a retry, not a quarantine
        assert result.returncode == 0, result.stderr
        assert "retrying" in result.stderr and "is not a valid orders page" in result.stderr
        assert q(env, "select count(*) from ops.quarantine") == [(0,)]
        assert q(env, "select count(*) from ops.batches where status = 'quarantined'") == [(0,)]
        assert q(env, "select count(*) from raw.orders")[0][0] > raw_before  # every page loaded
        assert q(env, "select status from ops.pipeline_runs order by started_at desc limit 1") == [("success",)]
        return
    ((batch_id, path, error),) = q(env, "select batch_id, lake_path, error from ops.batches where status = 'quarantined'")
    lake = Path(env["LAKEBOX_HOME"]) / "lake"
    raw_bytes = (lake / path).read_bytes()
    quarantined = list((lake / "quarantine" / "orders").glob(f"*/{batch_id}.json"))
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == raw_bytes  # nothing lost
    errors = orjson.loads(quarantined[0].with_name(quarantined[0].name + ".errors.json").read_bytes())
    assert errors["batch_id"] == batch_id and errors["source"] == "orders" and errors["lake_path"] == path
    assert any(r["rule"] == rule and r["column"] == column for r in errors["rules"])
    assert any(r["rule"] == rule for r in orjson.loads(error)), "the ledger keeps the failed rules as JSON"
    assert q(env, f"select count(*) from raw.orders where batch_id = '{batch_id}'") == [(0,)]
    assert q(env, f"select count(*) from ops.dq_results where batch_id = '{batch_id}' and not passed")[0][0] >= 1
    assert q(env, "select count(*) from raw.orders")[0][0] > raw_before  # good pages still loaded
    built = q(env, "select sum(total_orders) from analytics.daily_order_metrics")[0][0]
    assert built == q(env, "select count(*) from staging.stg_orders")[0][0], "marts built from the good pages"
    assert result.returncode == 4, result.stderr
    assert f"rule {rule}" in result.stderr and "source orders" in result.stderr
    if column:
        assert f"column {column}" in result.stderr
    assert q(env, "select batch_id, status from ops.quarantine") == [(batch_id, "open")]
    assert q(env, "select status from ops.pipeline_runs order by started_at desc limit 1") == [("partial",)]


CRASH_AFTER_LANDING = textwrap.dedent("""
    import os
    from lakebox.lake import Lake
    from lakebox.log import configure_logging
    from lakebox.pipelines.orders import SPEC
    from lakebox.runner import Pipeline, Stage, run_pipeline
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    configure_logging(settings.logs_dir)
    wh = open_warehouse(settings)
    fetch = next(s.fn for s in SPEC.stages if s.name == "fetch")

    def crash(ctx):
        os._exit(137)  # the process dies between landing and loading

    run_pipeline(Pipeline("orders", (Stage("fetch", fetch), Stage("crash", crash))), settings, Lake(settings.lake), wh)
""")

CRASH_INSIDE_LOAD = textwrap.dedent("""
    import os
    from lakebox.lake import Lake
    from lakebox.log import configure_logging
    from lakebox.pipelines.orders import SPEC
    from lakebox.runner import Pipeline, Stage, run_pipeline
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse, ops

    settings = Settings.load()
    configure_logging(settings.logs_dir)
    wh = open_warehouse(settings)
    fetch, load = (next(s.fn for s in SPEC.stages if s.name == name) for name in ("fetch", "load"))

    def dying_mark(*args, **kwargs):
        os._exit(137)  # the batches' rows inserted, their transaction not committed

    ops.mark_loaded = dying_mark
    run_pipeline(Pipeline("orders", (Stage("fetch", fetch), Stage("load", load))), settings, Lake(settings.lake), wh)
""")


@pytest.mark.parametrize("script", [CRASH_AFTER_LANDING, CRASH_INSIDE_LOAD], ids=["after-landing", "inside-load"])
def test_a_crash_is_recovered_by_the_next_run_without_duplicates(
    lakebox_env: dict[str, str], api_1000: str, script: str
) -> None:
    env = orders_env(lakebox_env, api_1000)
    crashed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 137, crashed.stderr
    landed = q(env, "select count(*) from ops.batches")[0][0]
    assert landed >= 3
    assert raw_rows(env) < 1000
    result = run_cli("run", "orders", env=env)
    assert result.returncode == 0, result.stderr
    assert q(env, "select count(*), count(distinct order_id) from raw.orders") == [(1000, 1000)]
    assert q(env, "select sum(total_orders) from analytics.daily_order_metrics") == [(1000,)]
    assert q(env, "select count(*) from ops.batches where status = 'loaded' and rows > 0") == [(landed,)]
    runs = dict(q(env, "select status, count(*) from ops.pipeline_runs group by 1"))
    assert runs == {"failed": 1, "success": 1}  # the crashed run is closed as interrupted
