"""The ledger's integrity queries (pending digests, a batch marked lost with its reason) run
unchanged on DuckDB, PostgreSQL and SQLite (Spark's ops store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from lakebox.lake import Lake
from lakebox.warehouse import Warehouse, ops
from lakebox.warehouse.ops import ledger


@pytest.fixture(params=["duckdb", "postgres", "sqlite"])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        from lakebox.warehouse.duckdb import DuckDBWarehouse

        store: Warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    elif request.param == "sqlite":
        from lakebox.warehouse.spark_ops import SqliteOpsStore

        store = SqliteOpsStore(str(tmp_path / "ops.sqlite"))
    else:
        from lakebox.warehouse.postgres import PostgresWarehouse
        from tests.conftest import fresh_database

        with fresh_database(request.getfixturevalue("postgres_admin_dsn")) as url:
            store = PostgresWarehouse(url, env={})
            store.ensure_schemas()
            yield store
            store.close()
        return
    store.ensure_schemas()
    yield store
    store.close()


def test_a_batch_marked_lost_keeps_why_and_leaves_the_pending(wh: Warehouse, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    a, b = (lake.land_batch("orders", f'{{"n": {i}}}'.encode(), "json", rows=1) for i in range(2))
    ops.record_landed_many(wh, [a, b], "run-1")
    assert sorted(ledger.landed_digests(wh, "orders")) == sorted(
        [(m.batch_id, m.key, m.sha256, m.bytes) for m in (a, b)])

    ledger.mark_lost(wh, b.batch_id, "disk replaced", "ops-person", "missing: is missing")
    assert ledger.landed_digests(wh, "orders") == [(a.batch_id, a.key, a.sha256, a.bytes)]
    batch_id, source, key, sha256, size, status, error = ledger.get_batch(wh, b.batch_id) or ()
    assert (batch_id, source, key, sha256, size, status) == (b.batch_id, "orders", b.key, b.sha256, b.bytes, "lost")
    note = orjson.loads(error)
    assert (note["lost"], note["by"], note["found"], note["was"]) == (
        "disk replaced", "ops-person", "missing: is missing", "landed")
    assert {r[0] for r in ledger.recorded_batches(wh)} == {a.batch_id, b.batch_id}
    assert ledger.recorded_batches(wh, "retail") == [] and ledger.get_batch(wh, "nope") is None
