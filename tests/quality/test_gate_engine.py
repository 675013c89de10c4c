"""The one gate engine (`quality.gate.run_gate`) on a tiny source of its own: a CSV feed
whose reader and checks are written here, so the engine's decisions are tested apart from
any bundled pipeline. Real DuckDB warehouse and lake in a temp dir."""

from __future__ import annotations

import ast
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakebox.lake import Lake
from lakebox.quality.gate import FAIL_FAST, QUARANTINE, Checked, CheckResult, run_gate
from lakebox.runner import RunContext
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse, ops
from lakebox.warehouse.ops import quarantine as quarantine_items

SOURCE = "tiny"
SRC = Path(__file__).resolve().parents[2] / "src" / "lakebox"


class TinyFeed:
    """Each landed batch is a CSV of `id,amount`: read into scratch, checked for the header
    (schema_drift) and for null ids, loaded into raw.tiny."""

    source = SOURCE
    noun = "batch"
    hint = "fix the feed and send the file again"
    drift_hint = "the feed changed shape"
    ledger_rows = True

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.waiting = ops.pending_batches(ctx.warehouse, SOURCE)
        self.asked = 0

    def pending(self) -> int:
        return len(self.waiting)

    def decisions(self) -> Generator[list[Checked]]:
        con = self.ctx.warehouse.scratch()
        for number, (batch_id, key, meta) in enumerate(self.waiting):
            self.asked += 1
            table = f"tiny_{number}"
            con.execute(f"create or replace temp table {table} as "
                        f"select * from read_csv('{self.ctx.lake.uri(key)}', header = true, all_varchar = true, "
                        "hive_partitioning = false)")
            yield [Checked(batch_id, key, self._checks(con, table), _count(con, table),
                           item=orjson.loads(meta or "{}").get("file"), load=table)]

    def _checks(self, con: Any, table: str) -> list[CheckResult]:
        columns = [row[0] for row in con.execute(f"describe {table}").fetchall()]
        if columns != ["id", "amount"]:
            return [CheckResult("schema_drift", None, False, 0, [], f"header {','.join(columns)}")]
        nulls = _count(con, table, "id is null")
        return [CheckResult("not_null", "id", nulls == 0, nulls, [], "ids missing")]

    def load(self, good: list[Checked]) -> dict[str, int]:
        wh = self.ctx.warehouse
        union = " union all ".join(f"select cast(id as integer) as id, '{c.batch_id}' as batch_id from {c.load}"
                                   for c in good)
        wh.load_from_scratch(union, "raw.tiny", ["id", "batch_id"])
        return {c.batch_id: c.rows for c in good}


def _count(con: Any, table: str, where: str = "true") -> int:
    return int(con.execute(f"select count(*) from {table} where {where}").fetchone()[0])


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[RunContext]:
    settings = Settings.load(env={"LAKEBOX_HOME": str(tmp_path)}, cwd=tmp_path)
    with open_warehouse(settings) as wh:
        wh.execute("create table if not exists raw.tiny (id integer, batch_id varchar)")
        yield RunContext(settings=settings, lake=Lake(settings.lake), warehouse=wh, run_id="run-1", pipeline=SOURCE)


def land(ctx: RunContext, body: bytes, file: str) -> str:
    manifest = ctx.lake.land_batch(SOURCE, body, "csv", rows=body.count(b"\n") - 1, meta={"file": file})
    ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
    return manifest.batch_id


def statuses(ctx: RunContext) -> dict[str, str]:
    return dict(ctx.warehouse.query("select batch_id, status from ops.batches where source = ?", [SOURCE]))


GOOD, BAD, DRIFTED = b"id,amount\n1,2\n2,3\n", b"id,amount\n,2\n3,4\n", b"key,amount\n1,2\n"


def test_a_good_batch_loads_and_its_checks_are_recorded(ctx: RunContext) -> None:
    batch = land(ctx, GOOD, "a.csv")
    result = run_gate(ctx, TinyFeed(ctx), QUARANTINE)
    assert (result.rows_in, result.rows_out) == (2, 2) and not ctx.gate_stops and not ctx.quarantined
    assert statuses(ctx) == {batch: "loaded"}
    assert ctx.warehouse.query("select id from raw.tiny order by id") == [(1,), (2,)]
    assert ctx.warehouse.query("select batch_id, check_name, passed from ops.dq_results") == [
        (batch, "not_null", True)]


def test_a_bad_batch_is_quarantined_with_errors_json_and_dq_rows_while_good_ones_load(ctx: RunContext) -> None:
    good, bad = land(ctx, GOOD, "a.csv"), land(ctx, BAD, "b.csv")
    result = run_gate(ctx, TinyFeed(ctx), QUARANTINE)
    assert statuses(ctx) == {good: "loaded", bad: "quarantined"} and not ctx.gate_stops
    assert result.rows_out == 2 and ctx.warehouse.query("select distinct batch_id from raw.tiny") == [(good,)]
    (item,) = ctx.quarantined
    assert (item.batch_id, item.item, item.status) == (bad, "b.csv", "open")
    errors = orjson.loads(ctx.lake.read_bytes(item.quarantine_path + ".errors.json"))
    assert errors["batch_id"] == bad and errors["item"] == "b.csv" and errors["what_to_do"] == TinyFeed.hint
    assert [(r["rule"], r["column"], r["failing_rows"]) for r in errors["rules"]] == [("not_null", "id", 1)]
    assert ctx.lake.read_bytes(item.quarantine_path) == BAD, "the original bytes are kept"
    assert sorted(ctx.warehouse.query("select batch_id, passed, failing_rows from ops.dq_results")) == sorted(
        [(good, True, 0), (bad, False, 1)])


def test_fail_fast_stops_the_source_at_its_first_bad_batch(ctx: RunContext) -> None:
    first, bad = land(ctx, GOOD, "a.csv"), land(ctx, BAD, "b.csv")
    later = land(ctx, GOOD.replace(b"1", b"7"), "c.csv")
    feed = TinyFeed(ctx)
    run_gate(ctx, feed, FAIL_FAST)
    assert statuses(ctx) == {first: "loaded", bad: "quarantined", later: "landed"}
    assert feed.asked == 2, "nothing after the bad batch is read"
    (stop,) = ctx.gate_stops
    assert "fail-fast policy: stopped at b.csv of source tiny" in stop and "1 later batch(es) stay pending" in stop
    assert "rule not_null, column id, 1 row(s)" in stop
    assert {b for (b,) in ctx.warehouse.query("select distinct batch_id from ops.dq_results")} == {first, bad}


def test_fail_fast_holds_back_the_rest_of_the_bad_inputs_unit(ctx: RunContext) -> None:
    """Inputs of one unit (a day's drop) stand or fall together: those decided with the bad
    one stay pending."""
    same_day, bad = land(ctx, GOOD, "a.csv"), land(ctx, BAD, "b.csv")

    class OneDay(TinyFeed):
        def decisions(self) -> Generator[list[Checked]]:
            group = [c for checked in super().decisions() for c in checked]
            yield [Checked(c.batch_id, c.key, c.results, c.rows, c.item, "the 2024-01-01 drop", c.load) for c in group]

    run_gate(ctx, OneDay(ctx), FAIL_FAST)
    assert statuses(ctx) == {same_day: "landed", bad: "quarantined"}
    assert "nothing of the 2024-01-01 drop was loaded" in ctx.gate_stops[0]


def test_every_batch_broke_the_schema_fails_the_run(ctx: RunContext) -> None:
    batches = [land(ctx, DRIFTED, "a.csv"), land(ctx, DRIFTED + b"2,2\n", "b.csv")]
    run_gate(ctx, TinyFeed(ctx), QUARANTINE)
    assert statuses(ctx) == dict.fromkeys(batches, "quarantined")
    (stop,) = ctx.gate_stops
    assert stop.startswith("source tiny: every batch of this run (2) broke the contract's schema; the feed changed")


def test_one_drifted_batch_among_good_ones_is_only_quarantined(ctx: RunContext) -> None:
    land(ctx, DRIFTED, "a.csv"), land(ctx, GOOD, "b.csv")
    run_gate(ctx, TinyFeed(ctx), QUARANTINE)
    assert not ctx.gate_stops and len(ctx.quarantined) == 1


def test_a_corrected_version_settles_the_superseded_item(ctx: RunContext) -> None:
    land(ctx, BAD, "b.csv")
    run_gate(ctx, TinyFeed(ctx), QUARANTINE)
    (item,) = quarantine_items.items(ctx.warehouse, source=SOURCE)
    other = land(ctx, GOOD.replace(b"1", b"8"), "other.csv")
    run_gate(ctx, TinyFeed(ctx), QUARANTINE)
    assert quarantine_items.get(ctx.warehouse, item.id).status == "open", "another file settles nothing"
    fixed = land(ctx, GOOD, "b.csv")
    run_gate(ctx, TinyFeed(ctx), QUARANTINE)
    settled = quarantine_items.get(ctx.warehouse, item.id)
    assert (settled.status, settled.superseded_by_batch) == ("resolved", fixed)
    assert statuses(ctx)[other] == "loaded"


def test_a_crash_while_loading_leaves_the_whole_group_pending(ctx: RunContext) -> None:
    good, bad = land(ctx, GOOD, "a.csv"), land(ctx, BAD, "b.csv")

    class Crashing(TinyFeed):
        def decisions(self) -> Generator[list[Checked]]:
            yield [c for checked in super().decisions() for c in checked]

        def load(self, good: list[Checked]) -> dict[str, int]:
            super().load(good)
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        run_gate(ctx, Crashing(ctx), QUARANTINE)
    assert statuses(ctx) == {good: "landed", bad: "landed"}
    assert ctx.warehouse.query("select count(*) from ops.dq_results") == [(0,)]
    assert ctx.warehouse.query("select count(*) from ops.quarantine") == [(0,)]
    assert ctx.warehouse.query("select count(*) from raw.tiny") == [(0,)]


# ------------------------------------------------------------------ the one-engine rule
GATE_PRIMITIVES = {"quarantine", "settle_superseded", "whole_source_drifted", "quarantine_key"}
STORE_WRITES = {"record_dq_results", "record_dq_results_many", "open_item"}


def _gate_calls(path: Path) -> set[str]:
    """The gate's primitives a module imports, and the ops writes only the gate makes."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module in {"lakebox.quality", "lakebox.quality.gate"}:
            found |= {a.name for a in node.names if a.name in GATE_PRIMITIVES}
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            via_gate = isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "gate"
            if name in STORE_WRITES or (via_gate and name in GATE_PRIMITIVES):
                found.add(name)
    return found


def test_only_the_gate_engine_records_checks_quarantines_and_settles() -> None:
    allowed_dirs = ("quality/", "warehouse/ops/")  # the engine, and the store it writes
    offenders = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(allowed_dirs):
            continue
        calls = _gate_calls(path)
        if calls:
            offenders[rel] = sorted(calls)
    assert offenders == {}, f"call quality.gate.run_gate with a GateSource instead: {offenders}"


def test_the_quarantine_key_has_one_definition() -> None:
    defined = [path.relative_to(SRC).as_posix() for path in SRC.rglob("*.py")
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.FunctionDef) and node.name in {"quarantine_key", "_input_key"}]
    assert defined == ["quality/gate.py"]
