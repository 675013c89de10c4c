"""Check every landed batch against its contract, then load it or quarantine it.

A load is one warehouse transaction (rows plus the ledger's 'loaded' mark), so a crash
leaves the batch either loaded or still pending, and the next run picks it up. A batch
that fails its gate goes through `quality.gate.quarantine` and is never loaded; under
the `fail-fast` policy the first one stops the source (later batches stay pending), and
when every batch of the run drifted from the contract the run fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import orjson

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


def load_pending_batches(ctx: RunContext, contract: Contract, reader: BatchReader, hint: str) -> StageResult:
    """Check each pending batch of the contract's source, oldest first; load or quarantine it."""
    import duckdb

    wh, source = ctx.warehouse, contract.source
    policy = policy_for(ctx.settings, ctx.pipeline)
    ensure_raw_table(ctx, contract)
    rows_in = rows_out = 0
    checked: list[list[CheckResult]] = []
    pending = ops.pending_batches(wh, source)
    con = wh.scratch()
    ctx.lake.register_with(con)
    with progress(f"checking and loading {source}", total=len(pending)) as bar:
        for position, (batch_id, key, meta) in enumerate(pending):
            if position % PREPARE_CHUNK == 0:
                chunk = pending[position:position + PREPARE_CHUNK]
                reader.prepare(con, [ctx.lake.uri(k) for _, k, _ in chunk])
            con = wh.scratch()
            try:
                select = reader.select_sql(con, ctx.lake.uri(key))
                con.execute(f"create or replace temp table {BATCH_RELATION} as {select}")
            except duckdb.Error as exc:
                results = [CheckResult("parse", None, False, 0, [], f"could not be parsed: {str(exc).splitlines()[0]}")]
            else:
                results = check_relation(con, BATCH_RELATION, contract)
            rows_in += 0 if results[0].check_name == "parse" else _count(con)
            checked.append(results)
            with wh.transaction():  # the batch's check results, rows and ledger mark commit together
                ops.record_dq_results(wh, ctx.run_id, batch_id, source, results)
                if failed(results):
                    quarantine(ctx, source=source, batch_id=batch_id, lake_key=key, results=results, hint=hint)
                else:
                    rows_out += _load(ctx, contract, batch_id, key, orjson.loads(meta or "{}"))
            con.execute(f"drop table if exists {BATCH_RELATION}")
            bar.advance(1)
            if failed(results) and policy == FAIL_FAST:
                ctx.stop_at_gate(
                    f"fail-fast policy: stopped at batch {batch_id} of source {source}; "
                    f"{len(pending) - position - 1} later batch(es) stay pending: "
                    + "; ".join(describe_failure(source, f"batch {batch_id}", r) for r in failed(results)))
                break
    if whole_source_drifted(checked):
        ctx.stop_at_gate(f"source {source}: every batch of this run ({len(checked)}) broke the contract's schema; "
                         "the source changed shape: fix it, or change the contract if the change is intended")
    return StageResult(rows_in=rows_in, rows_out=rows_out)


def _count(con: Any) -> int:
    return int(con.execute(f"select count(*) from {BATCH_RELATION}").fetchone()[0])


def _load(ctx: RunContext, contract: Contract, batch_id: str, key: str, meta: dict[str, Any]) -> int:
    wh = ctx.warehouse
    now = ops.utcnow().isoformat(sep=" ")
    lineage = f"{literal(batch_id)} as batch_id, timestamp {literal(now)} as ingested_at, {literal(key)} as lake_path"
    select = f"select t.*, {lineage} from ({typed_select(BATCH_RELATION, contract)}) as t"
    overlap = meta.get("overlap")
    if overlap and contract.version_key:
        select += _skip_versions_already_loaded(ctx, contract, overlap)
    with wh.transaction():
        rows = wh.load_from_scratch(select, contract.table, contract.raw_columns)
        ops.mark_batch(wh, batch_id, ops.LOADED, rows=rows)
        settle_superseded(ctx, contract.source, [batch_id])
    ctx.log.info("batch loaded", source=contract.source, batch_id=batch_id, rows=rows, table=contract.table)
    return rows


def _skip_versions_already_loaded(ctx: RunContext, contract: Contract, overlap: list[str]) -> str:
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
    scratch.register("lakebox_seen_versions", seen)
    return (f" where not exists (select 1 from lakebox_seen_versions as s "
            f"where s.{key} = t.{key} and s.{version} = t.{version})")
