"""append, replace and merge over two runs (with a re-sent older version), on real DuckDB
and PostgreSQL; and a crash inside the load's transaction leaves nothing half loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakebox.declarative.config import ColumnConfig
from lakebox.declarative.load import contract_for, hint, load_resources
from lakebox.ingest.batches import ContractBatches, Write, ensure_raw_table
from lakebox.quality.gate import QUARANTINE, Checked, run_gate
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse
from tests.declarative.loading import config, context, land, open_items, pages, raw, statuses

COLUMNS = (ColumnConfig("id", "integer", required=True), ColumnConfig("pm25", "number"),
           ColumnConfig("version", "integer"))


def rec(i: int, pm25: float, version: int = 1) -> dict[str, float | int]:
    return {"id": i, "pm25": pm25, "version": version}


def two_runs(store: tuple[Settings, Warehouse], tmp_path: Path, write: str, version: str | None,
             first: list[list[dict[str, float | int]]], second: list[list[dict[str, float | int]]]) -> list[tuple]:
    """Two fetches, each landed then loaded; the raw table's (id, pm25, version) after the second."""
    cfg = config(tmp_path, write=write, version=version, columns=COLUMNS)
    for run, fetched in (("run-1", first), ("run-2", second)):
        ctx = context(*store, cfg, run)
        for n, records in enumerate(fetched):
            land(ctx, cfg, records, n)
        load_resources(ctx, cfg, pages)
        assert not open_items(ctx, cfg) and set(statuses(ctx, cfg).values()) == {"loaded"}
    return raw(ctx, cfg, "id, pm25, version")


def test_append_keeps_every_row_of_every_run(store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    rows = two_runs(store, tmp_path, "append", None, [[rec(1, 1.0), rec(2, 2.0)]], [[rec(2, 2.5, 2), rec(3, 3.0)]])
    assert rows == [(1, 1.0, 1), (2, 2.0, 1), (2, 2.5, 2), (3, 3.0, 1)]


def test_replace_keeps_only_the_newest_fetch(store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    rows = two_runs(store, tmp_path, "replace", None, [[rec(1, 1.0)], [rec(2, 2.0)]], [[rec(3, 3.0)], [rec(4, 4.0)]])
    assert rows == [(3, 3.0, 1), (4, 4.0, 1)], "both pages of the second fetch, nothing of the first"


def test_merge_by_version_keeps_the_latest_version_and_ignores_a_resent_older_one(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    rows = two_runs(store, tmp_path, "merge", "version",
                    [[rec(1, 1.0, 1), rec(2, 2.0, 2)]],
                    [[rec(1, 1.5, 3), rec(2, 9.9, 1), rec(3, 3.0, 1)], [rec(1, 1.2, 2), rec(3, 3.0, 1)]])
    assert rows == [(1, 1.5, 3), (2, 2.0, 2), (3, 3.0, 1)]


def test_merge_without_a_version_takes_the_later_batch(store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    rows = two_runs(store, tmp_path, "merge", None, [[rec(1, 1.0), rec(2, 2.0)]], [[rec(1, 5.0)], [rec(1, 7.0)]])
    assert rows == [(1, 7.0, 1), (2, 2.0, 1)]


def test_merge_allows_several_versions_of_a_key_in_one_batch_but_not_the_same_one_twice(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    cfg = config(tmp_path, write="merge", version="version", columns=COLUMNS)
    ctx = context(*store, cfg, "run-1")
    good = land(ctx, cfg, [rec(1, 1.0, 1), rec(1, 2.0, 2)], 1)
    twice = land(ctx, cfg, [rec(2, 1.0, 1), rec(2, 2.0, 1)], 2)
    load_resources(ctx, cfg, pages)
    assert statuses(ctx, cfg) == {good: "loaded", twice: "quarantined"}
    assert raw(ctx, cfg, "id, pm25") == [(1, 2.0)]


class PowerCut(ContractBatches):
    """Loads, then the process dies before the transaction commits."""

    def load(self, good: list[Checked]) -> dict[str, int]:
        super().load(good)
        raise RuntimeError("power cut between the load and its ledger mark")


@pytest.mark.parametrize(("write", "mode"), [("merge", "evolve"), ("replace", "discard_row")])
def test_a_crash_inside_the_load_leaves_the_raw_table_ledger_and_quarantine_as_they_were(
        store: tuple[Settings, Warehouse], tmp_path: Path, write: str, mode: str) -> None:
    columns = COLUMNS[:2]
    cfg = config(tmp_path, schema=mode, write=write, columns=columns)
    resource = cfg.source.resources[0]
    ctx = context(*store, cfg, "run-1")
    land(ctx, cfg, [{"id": 1, "pm25": 1.0}], 1)
    load_resources(ctx, cfg, pages)
    before = raw(ctx, cfg, "id, pm25")
    ctx2 = context(*store, cfg, "run-2")
    evolving = [{"id": 1, "pm25": 5.0, "station": "x"}, {"id": 2, "pm25": 0.0}]
    setting_aside = [{"id": 1, "pm25": 5.0}, {"id": None, "pm25": 2.0}]  # a row to quarantine as a row
    batch = land(ctx2, cfg, evolving if mode == "evolve" else setting_aside, 2)
    contract = contract_for(cfg, resource)
    ensure_raw_table(ctx2, contract)
    crashing = PowerCut(ctx2, contract, pages(cfg, resource), hint(cfg, resource), None,
                        Write(write, resource.primary_key, None))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="power cut"):
        run_gate(ctx2, crashing, QUARANTINE)
    assert raw(ctx2, cfg, "id, pm25") == before
    assert statuses(ctx2, cfg)[batch] == "landed", "the batch stays pending for the next run"
    assert ctx2.warehouse.query("select count(*) from ops.dq_results where batch_id = ?", [batch]) == [(0,)]
    assert not open_items(ctx2, cfg)
    columns_now = {r[0] for r in ctx2.warehouse.query(
        "select column_name from information_schema.columns where table_name = ?", [cfg.raw_table(resource)[4:]])}
    assert "station" not in columns_now, "an evolved column is added in the load's transaction, or not at all"
    load_resources(context(*store, cfg, "run-3"), cfg, pages)
    assert statuses(ctx2, cfg)[batch] == "loaded" and raw(ctx2, cfg, "id, pm25")[0] == (1, 5.0)
