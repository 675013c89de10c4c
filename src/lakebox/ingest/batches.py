"""The landed batches of a contract's source, as the gate engine reads and checks them.

Batches are checked one by one, oldest first, and handed to `quality.gate.run_gate` in
chunks: a chunk (up to `CHUNK_BATCHES`, or `CHUNK_ROWS` rows) is decided in one warehouse
transaction, so a feed of many small pages (a hundred commits each) does not pay a
transaction, a ledger write and a load per page. Each batch stays all-or-nothing: a crash
leaves every batch of the chunk pending (none half loaded), and the next run picks them up.
A failed batch ends its chunk, so under `fail-fast` the batches after it are not checked for
nothing. Rules beyond the contract (`extra_checks`) join the contract's checks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from lakebox.ingest.landed import check_landed
from lakebox.log import progress
from lakebox.quality import check_relation, failed, typed_select
from lakebox.quality.checks import check_groups
from lakebox.quality.contract import Contract
from lakebox.quality.gate import Checked, CheckResult, run_gate
from lakebox.stage import StageResult
from lakebox.warehouse import ops
from lakebox.warehouse.ddl import create_if_missing
from lakebox.warehouse.sql import literal, quote

if TYPE_CHECKING:
    import duckdb

    from lakebox.stage import RunContext

ExtraChecks = Callable[["duckdb.DuckDBPyConnection", str], list[CheckResult]]
"""Rules beyond the contract, over one batch's rows in a relation."""

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


def load_pending_batches(
    ctx: RunContext, contract: Contract, reader: BatchReader, hint: str, extra_checks: ExtraChecks | None = None,
) -> StageResult:
    """Check each pending batch of the contract's source, oldest first; the gate loads or quarantines it."""
    ensure_raw_table(ctx, contract)
    check_landed(ctx, contract.source)
    return run_gate(ctx, ContractBatches(ctx, contract, reader, hint, extra_checks))


class ContractBatches:
    """A contract's pending batches as a `GateSource`: read by `reader`, checked against the
    contract (and `extra`), loaded into its raw table."""

    noun = "batch"
    drift_hint = "the source changed shape: fix it, or change the contract if the change is intended"
    ledger_rows = True

    def __init__(
        self, ctx: RunContext, contract: Contract, reader: BatchReader, hint: str, extra: ExtraChecks | None,
    ) -> None:
        self.ctx, self.contract, self.reader, self.hint, self.extra = ctx, contract, reader, hint, extra
        self.source = contract.source
        self.waiting = ops.pending_batches(ctx.warehouse, contract.source)

    def pending(self) -> int:
        return len(self.waiting)

    def decisions(self) -> Generator[list[Checked]]:
        ctx, contract, pending = self.ctx, self.contract, self.waiting
        wh = ctx.warehouse
        ctx.lake.register_with(wh.scratch())
        tables: list[str] = []
        chunk: list[_Checked] = []
        try:
            with progress(f"checking and loading {contract.source}", total=len(pending)) as bar:
                for start in range(0, len(pending), PREPARE_CHUNK):
                    window = pending[start:start + PREPARE_CHUNK]
                    self.reader.prepare(wh.scratch(), [ctx.lake.uri(k) for _, k, _ in window])
                    for done in _check_window(ctx, contract, self.reader, window, start, tables, self.extra):
                        if chunk and done.meta.get("overlap") and contract.version_key:
                            yield from self._decided(chunk)  # its overlap is judged against what is loaded
                        chunk.append(done)
                        bar.advance(1)
                        if failed(done.results) or len(chunk) >= CHUNK_BATCHES or \
                                sum(c.rows for c in chunk) >= CHUNK_ROWS:
                            yield from self._decided(chunk)
                yield from self._decided(chunk)
        finally:
            for table in tables + [c.owns for c in chunk if c.owns]:
                wh.scratch().execute(f"drop table if exists {table}")

    def _decided(self, chunk: list[_Checked]) -> Iterator[list[Checked]]:
        """The chunk for the gate to decide; then its scratch tables dropped and the chunk emptied."""
        if not chunk:
            return
        yield [Checked(c.batch_id, c.key, c.results, c.rows, load=c) for c in chunk]
        con = self.ctx.warehouse.scratch()
        for c in chunk:
            if c.owns:
                con.execute(f"drop table if exists {c.owns}")
        chunk.clear()

    def load(self, good: list[Checked]) -> dict[str, int]:
        return _load(self.ctx, self.contract, [c.load for c in good])


def _check_window(
    ctx: RunContext, contract: Contract, reader: BatchReader, window: list[tuple[str, str, str]], start: int,
    tables: list[str], extra: ExtraChecks | None = None,
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
            out[n].results = results[n] + (extra(con, relation) if extra else [])
            out[n].rows = int(counts.get(n, 0))
            out[n].table = None if failed(out[n].results) else relation
            grouped.add(n)
        out[numbers[-1]].owns = table
    for number, done in out.items():
        if number not in grouped:
            _check_alone(ctx, contract, reader, done, number, selects.get(number), extra)
    return [out[n] for n in sorted(out)]


def _check_alone(
    ctx: RunContext, contract: Contract, reader: BatchReader, done: _Checked, number: int, select: str | None,
    extra: ExtraChecks | None,
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
    done.results = check_relation(con, table, contract) + (extra(con, table) if extra else [])
    done.rows = _count(con, table)
    if failed(done.results):
        con.execute(f"drop table if exists {table}")
    else:
        done.table = done.owns = table


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"select count(*) from {table}").fetchone()[0])


def _load(ctx: RunContext, contract: Contract, good: list[_Checked]) -> dict[str, int]:
    """The good batches' rows into the raw table with one load; called inside the chunk's
    transaction. Returns rows loaded per batch."""
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
