"""Quarantine semantics as a matrix: policy × pipeline × bad kind, through the real CLI,
the real orders API on loopback, real DuckDB and real dbt builds.

With `quarantine`, good input of the same run loads and builds the marts, the run ends
`partial` (exit 4) naming the item, a run with nothing new stays `partial`, and the item
closes when a person dismisses it or a corrected version loads. With `fail-fast` the run
fails (exit 1) and the marts stay as they were. Raw, marts and ops are checked each step.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from lakebox.pipelines.orders.api import create_app, serve_in_thread
from lakebox.pipelines.retail.generator import build_drop, drop_files
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
START = dt.date(2025, 3, 1)
LAST = "2025-03-31"  # the day each retail cell drops, one of its files bad
ORDERS_PAGE = "50"


def q(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def runs(home: Path) -> list[str]:
    return [r[0] for r in q(home, "select status from ops.pipeline_runs order by started_at")]


def items(home: Path) -> list[tuple]:
    return q(home, "select id, item, status, batch_id, superseded_by_batch from ops.quarantine order by opened_at")


# ------------------------------------------------------------------ retail
def _negative_units(data: bytes) -> bytes:
    lines = data.decode().split("\n")
    fields = lines[2].split(",")
    fields[3] = "-4"
    lines[2] = ",".join(fields)
    return "\n".join(lines).encode()


RETAIL_BAD: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "schema_drift": (lambda d: d.replace(b"on_hand_units", b"units_on_hand", 1), "schema_drift"),
    "rule_violation": (_negative_units, "min"),
    "unparseable": (lambda d: d.replace(b"grocery", "épicerie".encode("latin-1"), 1), "encoding"),
}
RETAIL_FILES = drop_files(build_drop(3, 1, 5, START))
BAD_FILE = f"inventory_{LAST}.csv"


@pytest.fixture(scope="module")
def retail_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every day but the last loaded and built: the state each retail cell starts from."""
    base = tmp_path_factory.mktemp("retail") / "home"
    landing = base / "landing" / "retail"
    landing.mkdir(parents=True)
    for name, data in RETAIL_FILES.items():
        if LAST not in name:
            (landing / name).write_bytes(data)
    result = run_cli("run", "retail", env=_env(base))
    assert result.returncode == 0, result.stderr[-3000:]
    return base


def _env(home: Path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_") or k == "LAKEBOX_CACHE_DIR"}
    return {**env, "LAKEBOX_HOME": str(home), "LAKEBOX_CONFIG": "off",
            "LAKEBOX_HTTP_BACKOFF": "0.01", "LAKEBOX_HTTP_MAX_DELAY": "0.2", **extra}


def _retail_cell(retail_base: Path, tmp_path: Path, kind: str, policy: str) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    shutil.copytree(retail_base, home)
    landing = home / "landing" / "retail"
    for name, data in RETAIL_FILES.items():
        if LAST in name:
            (landing / name).write_bytes(RETAIL_BAD[kind][0](data) if name == BAD_FILE else data)
    return home, _env(home, LAKEBOX_RETAIL_POLICY=policy)


def _last_day_in_marts(home: Path) -> int:
    return q(home, f"select count(*) from analytics.store_daily_performance where date = '{LAST}'")[0][0]


@pytest.mark.parametrize("kind", list(RETAIL_BAD))
def test_retail_quarantine_builds_marts_from_good_input_then_dismiss(
    retail_base: Path, tmp_path: Path, kind: str
) -> None:
    home, env = _retail_cell(retail_base, tmp_path, kind, "quarantine")
    result = run_cli("run", "retail", env=env)
    assert result.returncode == 4, result.stderr[-3000:]
    assert BAD_FILE in result.stderr and RETAIL_BAD[kind][1] in result.stderr
    assert runs(home) == ["success", "partial"]
    assert _last_day_in_marts(home) == 3, "the good sales file of the same drop reached the marts"
    assert q(home, f"select count(*) from raw.retail_inventory where file_name = '{BAD_FILE}'") == [(0,)]
    assert q(home, f"select count(*) from raw.retail_daily_sales where date = '{LAST}'")[0][0] > 0
    ((item_id, item, status, batch_id, _),) = items(home)
    assert (item, status) == (BAD_FILE, "open")
    assert q(home, f"select status from ops.batches where batch_id = '{batch_id}'") == [("quarantined",)]

    listed = run_cli("quarantine", "list", env=env)
    assert listed.returncode == 0 and item_id in listed.stdout
    shown = run_cli("quarantine", "show", item_id, env=env)
    document = orjson.loads(shown.stdout)
    assert document["item"] == BAD_FILE and document["rules"][0]["rule"] == RETAIL_BAD[kind][1]
    status = run_cli("status", env=env)
    assert "1 open quarantined item" in status.stdout and item_id in status.stdout

    again = run_cli("run", "retail", env=env)
    assert again.returncode == 4 and item_id in again.stderr, "nothing new, but the item is still open"
    assert runs(home)[-1] == "partial"

    refused = run_cli("quarantine", "dismiss", item_id, env=env)
    assert refused.returncode != 0 and "--reason" in refused.stderr
    dismissed = run_cli("quarantine", "dismiss", item_id, "--reason", "store 2 sends a new export", env=env)
    assert dismissed.returncode == 0, dismissed.stderr
    assert q(home, "select status, reason from ops.quarantine") == [("dismissed", "store 2 sends a new export")]
    done = run_cli("run", "retail", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert runs(home)[-1] == "success" and _last_day_in_marts(home) == 3


@pytest.mark.parametrize("kind", list(RETAIL_BAD))
def test_retail_quarantined_file_is_superseded_by_a_corrected_version(
    retail_base: Path, tmp_path: Path, kind: str
) -> None:
    home, env = _retail_cell(retail_base, tmp_path, kind, "quarantine")
    assert run_cli("run", "retail", env=env).returncode == 4
    (home / "landing" / "retail" / BAD_FILE).write_bytes(RETAIL_FILES[BAD_FILE])
    fixed = run_cli("run", "retail", env=env)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    ((_, item, status, _, by_batch),) = items(home)
    assert (item, status) == (BAD_FILE, "resolved")
    assert q(home, f"select distinct batch_id from raw.retail_inventory where file_name = '{BAD_FILE}'") == [
        (by_batch,)]
    assert q(home, f"select count(*) from staging.stg_retail_inventory where _batch_id = '{by_batch}'")[0][0] > 0, \
        "the corrected file reached the models"
    assert runs(home) == ["success", "partial", "success"]


@pytest.mark.parametrize("kind", list(RETAIL_BAD))
def test_retail_fail_fast_fails_and_leaves_the_marts(retail_base: Path, tmp_path: Path, kind: str) -> None:
    home, env = _retail_cell(retail_base, tmp_path, kind, "fail-fast")
    result = run_cli("run", "retail", env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    assert BAD_FILE in result.stderr
    assert runs(home) == ["success", "failed"]
    assert _last_day_in_marts(home) == 0, "marts untouched"
    assert q(home, f"select count(*) from raw.retail_daily_sales where date = '{LAST}'") == [(0,)]
    assert [(i[1], i[2]) for i in items(home)] == [(BAD_FILE, "open")]


def test_retail_whole_source_drift_fails(retail_base: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(retail_base, home)
    (home / "landing" / "retail" / BAD_FILE).write_bytes(RETAIL_BAD["schema_drift"][0](RETAIL_FILES[BAD_FILE]))
    result = run_cli("run", "retail", env=_env(home))
    assert result.returncode == 1 and "every file of this run" in result.stderr, result.stderr[-3000:]
    assert runs(home) == ["success", "failed"]


# ------------------------------------------------------------------ orders
ORDERS_BAD = {"schema_drift": ("rename_field", "schema_drift"), "rule_violation": ("negative_amount", "min")}


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with serve_in_thread(create_app(orders=1100, seed=11)) as server:
        yield server.url


@pytest.fixture(scope="module")
def orders_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1000 orders loaded and built; each cell's run then fetches the rest in several pages."""
    base = tmp_path_factory.mktemp("orders") / "home"
    with serve_in_thread(create_app(orders=1000, seed=11)) as server:
        result = run_cli("run", "orders", env=_env(base, LAKEBOX_ORDERS_API_URL=server.url,
                                                   LAKEBOX_ORDERS_PAGE_SIZE="300"))
    assert result.returncode == 0, result.stderr[-3000:]
    return base


def _orders_cell(orders_base: Path, tmp_path: Path, api: str, policy: str) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    shutil.copytree(orders_base, home)
    return home, _env(home, LAKEBOX_ORDERS_API_URL=api, LAKEBOX_ORDERS_PAGE_SIZE=ORDERS_PAGE,
                      LAKEBOX_ORDERS_POLICY=policy)


def _run_with_fault(api: str, fault: str, env: dict[str, str]):
    httpx.post(f"{api}/_faults", json={"kind": fault, "count": 1}).raise_for_status()
    try:
        return run_cli("run", "orders", env=env)
    finally:
        httpx.delete(f"{api}/_faults").raise_for_status()


def _mart_orders(home: Path) -> int:
    return q(home, "select sum(total_orders) from analytics.daily_order_metrics")[0][0]


@pytest.mark.parametrize("kind", list(ORDERS_BAD))
def test_orders_quarantine_builds_marts_from_good_pages_then_dismiss_or_supersede(
    orders_base: Path, tmp_path: Path, api: str, kind: str
) -> None:
    home, env = _orders_cell(orders_base, tmp_path, api, "quarantine")
    before = _mart_orders(home)
    watermark = q(home, "select value from ops.source_state where source = 'orders' and state_key = 'watermark'")
    fault, rule = ORDERS_BAD[kind]
    result = _run_with_fault(api, fault, env)
    assert result.returncode == 4, result.stderr[-3000:]
    assert f"rule {rule}" in result.stderr
    assert runs(home) == ["success", "partial"]
    ((item_id, _, status, batch_id, _),) = items(home)
    assert status == "open" and item_id in result.stderr
    assert q(home, f"select count(*) from raw.orders where batch_id = '{batch_id}'") == [(0,)]
    assert _mart_orders(home) > before, "the good pages of the same run reached the marts"
    assert _mart_orders(home) == q(home, "select count(*) from staging.stg_orders")[0][0]

    again = run_cli("run", "orders", env=env)
    assert again.returncode == 4 and item_id in again.stderr
    assert runs(home)[-1] == "partial"

    # The source sends the same request again (a backfill from the old watermark): the
    # corrected page loads and resolves the item; pages already loaded are not loaded twice.
    copy = tmp_path / "superseded"
    shutil.copytree(home, copy)
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        con.execute("update ops.source_state set value = ? where source = 'orders' and state_key = 'watermark'",
                    [watermark[0][0]])
    fixed = run_cli("run", "orders", env={**env, "LAKEBOX_HOME": str(copy)})
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    ((_, _, status, _, by_batch),) = items(copy)
    assert status == "resolved" and q(copy, f"select count(*) from raw.orders where batch_id = '{by_batch}'")[0][0] > 0
    assert q(copy, "select count(*) - count(distinct (order_id, updated_at)) from raw.orders") == [(0,)]

    dismissed = run_cli("quarantine", "dismiss", item_id, "--reason", "replayed upstream", env=env)
    assert dismissed.returncode == 0, dismissed.stderr
    done = run_cli("run", "orders", env=env)
    assert done.returncode == 0 and runs(home)[-1] == "success", done.stderr[-3000:]


def test_orders_unparseable_page_that_a_retry_cures_is_a_retry_not_a_quarantine(
    orders_base: Path, tmp_path: Path, api: str
) -> None:
    home, env = _orders_cell(orders_base, tmp_path, api, "quarantine")
    result = _run_with_fault(api, "malformed", env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "retrying" in result.stderr and items(home) == []
    assert q(home, "select count(*) from ops.batches where status = 'quarantined'") == [(0,)]
    assert runs(home) == ["success", "success"]


@pytest.mark.parametrize("kind", list(ORDERS_BAD))
def test_orders_fail_fast_fails_and_leaves_the_marts(orders_base: Path, tmp_path: Path, api: str, kind: str) -> None:
    home, env = _orders_cell(orders_base, tmp_path, api, "fail-fast")
    marts = q(home, "select * from analytics.daily_order_metrics order by order_date")
    result = _run_with_fault(api, ORDERS_BAD[kind][0], env)
    assert result.returncode == 1 and "fail-fast" in result.stderr, result.stderr[-3000:]
    assert runs(home) == ["success", "failed"]
    assert q(home, "select * from analytics.daily_order_metrics order by order_date") == marts
    assert [i[2] for i in items(home)] == ["open"]
    assert q(home, "select count(*) from ops.batches where status = 'landed'")[0][0] >= 1, "later pages wait"


def test_orders_whole_source_drift_fails(orders_base: Path, tmp_path: Path, api: str) -> None:
    home, env = _orders_cell(orders_base, tmp_path, api, "quarantine")
    httpx.post(f"{api}/_faults", json={"kind": "rename_field", "count": -1}).raise_for_status()
    try:
        result = run_cli("run", "orders", env=env)
    finally:
        httpx.delete(f"{api}/_faults").raise_for_status()
    assert result.returncode == 1 and "every batch of this run" in result.stderr, result.stderr[-3000:]
    assert runs(home) == ["success", "failed"]
