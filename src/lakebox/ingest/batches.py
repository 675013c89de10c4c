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
from lakebox.warehouse.sql import literal, quote

if TYPE_CHECKING:
    from lakebox.stage import RunContext

BATCH_RELATION = "lakebox_batch"


def ensure_raw_table(ctx: RunContext, contract: Contract) -> None:
    schema, table = contract.table.split(".")
    if not ctx.warehouse.table_exists(schema, table):
        ctx.warehouse.execute(contract.raw_ddl())


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


@dataclass
class _Checked:
    """A checked batch waiting in a chunk: its results, and the scratch table of its rows."""

    batch_id: str
    key: str
    meta: dict[str, Any]
    results: list[CheckResult]
    table: str | None
    rows: int


def load_pending_batches(ctx: RunContext, contract: Contract, reader: BatchReader, hint: str) -> StageResult:
    """Check each pending batch of the contract's source, oldest first; load or quarantine it."""
    import duckdb

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
    with progress(f"checking and loading {source}", total=len(pending)) as bar:
        for position, (batch_id, key, meta) in enumerate(pending):
            if position % PREPARE_CHUNK == 0:
                upcoming = pending[position:position + PREPARE_CHUNK]
                reader.prepare(con, [ctx.lake.uri(k) for _, k, _ in upcoming])
            parsed = orjson.loads(meta or "{}")
            if chunk and parsed.get("overlap") and contract.version_key:
                _decide(ctx, contract, chunk, hint, result)  # its overlap is judged against what is loaded
            con = wh.scratch()
            table = f"{BATCH_RELATION}_{len(chunk)}"
            try:
                select = reader.select_sql(con, ctx.lake.uri(key))
                con.execute(f"create or replace temp table {table} as {select}")
            except duckdb.Error as exc:
                con.execute(f"drop table if exists {table}")
                results = [CheckResult("parse", None, False, 0, [], f"could not be parsed: {str(exc).splitlines()[0]}")]
                rows = 0
            else:
                results = check_relation(con, table, contract)
                rows = _count(con, table)
            checked.append(results)
            chunk.append(_Checked(batch_id, key, parsed, results, None if failed(results) else table, rows))
            if failed(results) and table:
                con.execute(f"drop table if exists {table}")
            bar.advance(1)
            if failed(results) and policy == FAIL_FAST:
                _decide(ctx, contract, chunk, hint, result)
                ctx.stop_at_gate(
                    f"fail-fast policy: stopped at batch {batch_id} of source {source}; "
                    f"{len(pending) - position - 1} later batch(es) stay pending: "
                    + "; ".join(describe_failure(source, f"batch {batch_id}", r) for r in failed(results)))
                break
            if len(chunk) >= CHUNK_BATCHES or sum(c.rows for c in chunk) >= CHUNK_ROWS:
                _decide(ctx, contract, chunk, hint, result)
        _decide(ctx, contract, chunk, hint, result)
    if whole_source_drifted(checked):
        ctx.stop_at_gate(f"source {source}: every batch of this run ({len(checked)}) broke the contract's schema; "
                         "the source changed shape: fix it, or change the contract if the change is intended")
    return result


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
        for c in good:
            con.execute(f"drop table if exists {c.table}")
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
