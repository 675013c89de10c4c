"""The ops.* modules on both engines: the quarantine item lifecycle, and a read-only
warehouse that writes nothing and holds no lock between queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from lakebox.errors import WarehouseError
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse, open_warehouse
from lakebox.warehouse.ops import quarantine


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    env = {"LAKEBOX_HOME": str(tmp_path), "LAKEBOX_CONFIG": "off"}
    if request.param == "postgres":
        env["LAKEBOX_WAREHOUSE"] = request.getfixturevalue("pg_url")
    return Settings.load(env=env, cwd=tmp_path)


@pytest.fixture
def wh(settings: Settings) -> Iterator[Warehouse]:
    with open_warehouse(settings) as warehouse:
        yield warehouse


def _open(wh: Warehouse, batch: str, pipeline: str = "retail") -> quarantine.QuarantineItem:
    return quarantine.open_item(wh, source="retail", pipeline=pipeline, batch_id=batch, item=f"{batch}.csv",
                                lake_path=f"raw/retail/{batch}.csv", quarantine_path=f"quarantine/retail/{batch}.csv",
                                rules='[{"rule": "min"}]', run_id="run-1")


def test_an_item_stays_open_until_resolved_or_dismissed(wh: Warehouse) -> None:
    first, second, other = _open(wh, "b1"), _open(wh, "b2"), _open(wh, "b3", pipeline="orders")
    assert [i.id for i in quarantine.items(wh, pipeline="retail")] == [first.id, second.id]
    assert [i.id for i in quarantine.items(wh, source="retail")] == [first.id, second.id, other.id]

    quarantine.resolve(wh, [first.id], by_batch="b9", run_id="run-2")
    quarantine.dismiss(wh, second.id, reason="store closed", by="ana")
    quarantine.dismiss(wh, first.id, reason="too late", by="bob")  # already resolved: unchanged
    assert quarantine.items(wh, pipeline="retail") == []
    settled = {i.id: (i.status, i.resolved_by, i.reason, i.superseded_by_batch)
               for i in quarantine.items(wh, include_closed=True)}
    assert settled == {
        first.id: ("resolved", "run-2", "a corrected version loaded", "b9"),
        second.id: ("dismissed", "ana", "store closed", None),
        other.id: ("open", None, None, None),
    }
    assert quarantine.get(wh, "nope") is None


def test_a_reader_writes_nothing(settings: Settings, wh: Warehouse) -> None:
    _open(wh, "b1")
    wh.release()
    with open_warehouse(settings, read_only=True) as reader:
        assert [i.batch_id for i in quarantine.items(reader)] == ["b1"]
        with pytest.raises((WarehouseError, duckdb.Error)):
            reader.execute("delete from ops.quarantine")
    assert len(quarantine.items(wh)) == 1


def test_a_duckdb_reader_holds_no_lock_between_queries(tmp_path: Path) -> None:
    settings = Settings.load(env={"LAKEBOX_HOME": str(tmp_path), "LAKEBOX_CONFIG": "off"}, cwd=tmp_path)
    open_warehouse(settings).close()
    reader = open_warehouse(settings, read_only=True)
    assert reader.query("select count(*) from ops.quarantine") == [(0,)]
    with open_warehouse(settings) as writer:  # would fail on DuckDB's file lock if the reader held it
        _open(writer, "b1")
    assert reader.query("select count(*) from ops.quarantine") == [(1,)]
    reader.close()
