"""Check every landed batch against its contract, then load it or quarantine it.

Batches are checked one by one, oldest first, and decided in chunks: the check results,
quarantines, rows and ledger marks of a chunk of batches (up to `CHUNK_BATCHES`, or
`CHUNK_ROWS` rows) commit in one warehouse transaction, so a feed of many small pages (a
hundred commits each) does not pay a transaction, a ledger write and a load per page. Each
batch stays all-or-nothing: a crash leaves every batch of the chunk pending (none half
loaded), and the next run picks them up. A batch that fails its gate goes through
`quality.gate.quarantine` and is never loaded; under the `fail-fast` policy the first one
stops the source (the batches before it load, later ones stay pending), and when every
batch of the run drifted from the contract the run fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from lakebox.ingest.landed import check_landed
from lakebox.log import progress
from lakebox.quality import check_relation, failed, typed_select
from lakebox.quality.checks import check_groups
from lakebox.quality.contract import Contract
from lakebox.quality.gate import (
    FAIL_FAST,
    CheckResult,
    describe_failure,
    policy_for,
    quarantine,
    settle_superseded,
    whole_source_drifted,
)
from lakebox.stage import StageResult
from lakebox.warehouse import ops
from lakebox.warehouse.ddl import create_if_missing
from lakebox.warehouse.sql import literal, quote

if TYPE_CHECKING:
    from lakebox.stage import RunContext

BATCH_RELATION = "lakebox_batch"


def ensure_raw_table(ctx: RunContext, contract: Contract) -> None:
    schema, table = contract.table.split(".")
    if not ctx.warehouse.table_exists(schema, table):
        create_if_missing(ctx.warehouse, [contract.raw_ddl()])


class BatchReader(Protocol):
    """Reads one landed lake object as rows, for checking and loading."""

    def prepare(self, con: Any, uris: list[str]) -> None:
        """Optional bulk pre-pass over several objects at once (DuckDB parallelises
        across files, not inside one); must not fail: a bad file is named by select_sql."""

    def select_sql(self, con: Any, uri: str) -> str:
        """The SELECT that reads `uri` as rows."""


PREPARE_CHUNK = 8
CHUNK_BATCHES = 64  # batches decided in one transaction
CHUNK_ROWS = 200_000  # ... or fewer, when they are large: each is held in a scratch table until then
GROUP_COLUMN = "lakebox_batch_no"
GROUP_ROWS = 10_000  # batches up to this many rows are checked together; a larger one pays its few queries alone


@dataclass
class _Checked:
    """A checked batch waiting in a chunk: its results, and the relation of its rows (None
    when it failed); `owns` is the scratch table to drop once it is decided."""

    batch_id: str
    key: str
    meta: dict[str, Any]
    results: list[CheckResult]
    table: str | None
    rows: int
    owns: str | None = None


def load_pending_batches(ctx: RunContext, contract: Contract, reader: BatchReader, hint: str) -> StageResult:
    """Check each pending batch of the contract's source, oldest first; load or quarantine it."""
    wh, source = ctx.warehouse, contract.source
    policy = policy_for(ctx.settings, ctx.pipeline)
    ensure_raw_table(ctx, contract)
    check_landed(ctx, source)
    result = StageResult(rows_in=0, rows_out=0)
    checked: list[list[CheckResult]] = []
    chunk: list[_Checked] = []
    pending = ops.pending_batches(wh, source)
    con = wh.scratch()
    ctx.lake.register_with(con)
    tables: list[str] = []
    try:
        with progress(f"checking and loading {source}", total=len(pending)) as bar:
            for start in range(0, len(pending), PREPARE_CHUNK):
                window = pending[start:start + PREPARE_CHUNK]
                reader.prepare(wh.scratch(), [ctx.lake.uri(k) for _, k, _ in window])
                stop = False
                for offset, done in enumerate(_check_window(ctx, contract, reader, window, start, tables)):
                    if chunk and done.meta.get("overlap") and contract.version_key:
                        _decide(ctx, contract, chunk, hint, result)  # its overlap is judged against what is loaded
                    checked.append(done.results)
                    chunk.append(done)
                    bar.advance(1)
                    if failed(done.results) and policy == FAIL_FAST:
                        _decide(ctx, contract, chunk, hint, result)
                        ctx.stop_at_gate(
                            f"fail-fast policy: stopped at batch {done.batch_id} of source {source}; "
                            f"{len(pending) - start - offset - 1} later batch(es) stay pending: "
                            + "; ".join(describe_failure(source, f"batch {done.batch_id}", r)
                                        for r in failed(done.results)))
                        stop = True
                        break
                    if len(chunk) >= CHUNK_BATCHES or sum(c.rows for c in chunk) >= CHUNK_ROWS:
                        _decide(ctx, contract, chunk, hint, result)
                if stop:
                    break
            _decide(ctx, contract, chunk, hint, result)
    finally:
        for table in tables:
            wh.scratch().execute(f"drop table if exists {table}")
    if whole_source_drifted(checked):
        ctx.stop_at_gate(f"source {source}: every batch of this run ({len(checked)}) broke the contract's schema; "
                         "the source changed shape: fix it, or change the contract if the change is intended")
    return result


def _check_window(
    ctx: RunContext, contract: Contract, reader: BatchReader, window: list[tuple[str, str, str]], start: int,
    tables: list[str],
) -> list[_Checked]:
    """Check a window of batches, in order. Batches whose rows have the same columns are
    copied into one scratch table and checked together (`check_groups`: a query or two for
    all of them, not a few per batch); one that cannot be read, or whose overlap must be
    judged against what is loaded, is checked alone, so a bad batch is named alone; so is a
    large one (or one of unknown size), which is not worth a second copy in scratch."""
    import duckdb

    con = ctx.warehouse.scratch()
    out: dict[int, _Checked] = {}
    shapes: dict[tuple[Any, ...], list[tuple[int, str]]] = {}
    selects: dict[int, str] = {}
    landed_rows = ops.ledger.batch_rows(ctx.warehouse, [batch_id for batch_id, _, _ in window])
    for number, (batch_id, key, meta) in enumerate(window, start):
        parsed = orjson.loads(meta or "{}")
        out[number] = _Checked(batch_id, key, parsed, [], None, 0)
        if (parsed.get("overlap") and contract.version_key) or landed_rows.get(batch_id, GROUP_ROWS + 1) > GROUP_ROWS:
            continue
        try:
            select = reader.select_sql(con, ctx.lake.uri(key))
            bound = con.sql(select)  # bound, not run: its columns and their types
            shape = (tuple(bound.columns), tuple(str(t) for t in bound.types))
        except duckdb.Error:
            continue
        selects[number] = select
        shapes.setdefault(shape, []).append((number, select))
    grouped: set[int] = set()
    for members in shapes.values():
        if len(members) < 2:
            continue
        table = f"{BATCH_RELATION}_group_{members[0][0]}"
        union = " union all ".join(f"select *, {n} as {GROUP_COLUMN} from ({sql})" for n, sql in members)
        try:
            con.execute(f"create or replace temp table {table} as {union}")
        except duckdb.Error:
            con.execute(f"drop table if exists {table}")
            continue  # each is read alone below, so the bad one is named
        tables.append(table)
        numbers = [n for n, _ in members]
        results = check_groups(con, table, contract, GROUP_COLUMN, numbers)
        counts = dict(con.execute(f"select {GROUP_COLUMN}, count(*) from {table} group by 1").fetchall())
        for n in numbers:
            relation = f"(select * exclude ({GROUP_COLUMN}) from {table} where {GROUP_COLUMN} = {n})"
            out[n].results, out[n].rows = results[n], int(counts.get(n, 0))
            out[n].table = None if failed(results[n]) else relation
            grouped.add(n)
        out[numbers[-1]].owns = table
    for number, done in out.items():
        if number not in grouped:
            _check_alone(ctx, contract, reader, done, number, selects.get(number))
    return [out[n] for n in sorted(out)]


def _check_alone(
    ctx: RunContext, contract: Contract, reader: BatchReader, done: _Checked, number: int, select: str | None,
) -> None:
    """One batch read into its own scratch table (with `select`, when the reader gave one) and checked."""
    import duckdb

    con = ctx.warehouse.scratch()
    table = f"{BATCH_RELATION}_{number}"
    try:
        select = select or reader.select_sql(con, ctx.lake.uri(done.key))
        con.execute(f"create or replace temp table {table} as {select}")
    except duckdb.Error as exc:
        con.execute(f"drop table if exists {table}")
        done.results = [CheckResult("parse", None, False, 0, [], f"could not be parsed: {str(exc).splitlines()[0]}")]
        return
    done.results = check_relation(con, table, contract)
    done.rows = _count(con, table)
    if failed(done.results):
        con.execute(f"drop table if exists {table}")
    else:
        done.table = done.owns = table


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"select count(*) from {table}").fetchone()[0])


def _decide(ctx: RunContext, contract: Contract, chunk: list[_Checked], hint: str, result: StageResult) -> None:
    """One transaction for a chunk of checked batches: every batch's check results, the bad
    ones quarantined, the good ones' rows and 'loaded' marks. Empties `chunk`."""
    if not chunk:
        return
    wh, source = ctx.warehouse, contract.source
    good = [c for c in chunk if c.table is not None]
    try:
        with wh.transaction():
            ops.record_dq_results_many(wh, ctx.run_id, source, [(c.batch_id, c.results) for c in chunk])
            for c in chunk:
                if c.table is None:
                    quarantine(ctx, source=source, batch_id=c.batch_id, lake_key=c.key, results=c.results, hint=hint)
            loaded = _load(ctx, contract, good)
    finally:
        con = wh.scratch()
        for c in chunk:
            if c.owns:
                con.execute(f"drop table if exists {c.owns}")
    result.rows_in += sum(c.rows for c in chunk)
    result.rows_out += sum(loaded.values())
    chunk.clear()


def _load(ctx: RunContext, contract: Contract, good: list[_Checked]) -> dict[str, int]:
    """The good batches' rows into the raw table with one load, and their ledger marks;
    call inside the chunk's transaction. Returns rows loaded per batch."""
    if not good:
        return {}
    wh = ctx.warehouse
    now = ops.utcnow().isoformat(sep=" ")
    parts = []
    for c in good:
        table = c.table or ""  # a good batch always has its table
        lineage = (f"{literal(c.batch_id)} as batch_id, timestamp {literal(now)} as ingested_at, "
                   f"{literal(c.key)} as lake_path")
        select = f"select t.*, {lineage} from ({typed_select(table, contract)}) as t"
        overlap = c.meta.get("overlap")
        if overlap and contract.version_key:
            select += _skip_versions_already_loaded(ctx, contract, overlap, table)
        parts.append(select)
    union = " union all ".join(parts)
    by_batch = dict.fromkeys((c.batch_id for c in good), 0)
    scratch = wh.scratch()
    scratch.execute(f"create or replace temp table {BATCH_RELATION}_rows as {union}")
    try:
        by_batch |= dict(scratch.execute(f"select batch_id, count(*) from {BATCH_RELATION}_rows group by 1").fetchall())
        rows = wh.load_from_scratch(f"select * from {BATCH_RELATION}_rows", contract.table, contract.raw_columns)
    finally:
        wh.scratch().execute(f"drop table if exists {BATCH_RELATION}_rows")
    ops.mark_loaded(wh, by_batch)
    settle_superseded(ctx, contract.source, list(by_batch))
    ctx.log.info("batches loaded", source=contract.source, batches=len(good), rows=rows, table=contract.table)
    return by_batch


def _skip_versions_already_loaded(ctx: RunContext, contract: Contract, overlap: list[str], table: str) -> str:
    """A fetch that overlaps the previous one (so nothing arriving late in the watermark's
    last moment is missed) re-sends versions already loaded; they are not loaded twice.
    Only the overlap window of the raw table is read."""
    import datetime as dt

    key, version = (quote(c) for c in contract.version_key)
    low, high = (dt.datetime.fromisoformat(t).astimezone(dt.UTC).replace(tzinfo=None) for t in overlap)
    seen = ctx.warehouse.query_arrow(
        f"select {key}, {version} from {contract.table} where {version} >= ? and {version} <= ?", [low, high]
    )
    scratch = ctx.warehouse.scratch()
    scratch.register(f"{table}_seen", seen)
    return (f" where not exists (select 1 from {table}_seen as s "
            f"where s.{key} = t.{key} and s.{version} = t.{version})")
