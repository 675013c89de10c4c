"""The landed batches of a contract's source, as the gate engine reads and checks them.

Batches are checked one by one, oldest first, and handed to `quality.gate.run_gate` in
chunks: a chunk (up to `CHUNK_BATCHES`, or `CHUNK_ROWS` rows) is decided in one warehouse
transaction, so a feed of many small pages (a hundred commits each) does not pay a
transaction, a ledger write and a load per page. Each batch stays all-or-nothing: a crash
leaves every batch of the chunk pending (none half loaded), and the next run picks them up.
A failed batch ends its chunk, so under `fail-fast` the batches after it are not checked for
nothing. Rules beyond the contract (`extra_checks`) join the contract's checks.

The contract's schema mode is read here, in the same loop: under `evolve` a batch's new
columns join the raw table (ALTER TABLE in the batch's transaction), and a later batch of
the run bringing the same column is checked again against its type; under the discard
modes each batch is checked alone with its record numbers, and its bad rows or values are
handed to the gate as `SetAside` (quarantined as rows) while the rest loads.

`Write` says how the rows land (dlt's write dispositions): `append` every row; `replace`,
the raw table keeps only the batches of the fetch being loaded; `merge`, the latest version
per key (by `version`, else the later batch). Each is SQL on the warehouse, in the chunk's
transaction with its ledger marks, so a crash leaves all of it or none.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from lakebox.ingest.landed import check_landed
from lakebox.log import progress
from lakebox.quality import check_relation, typed_select
from lakebox.quality.checks import (
    DISCARDABLE,
    Schema,
    check_groups,
    discards,
    relation_columns,
    schema_of,
    set_aside_rows,
)
from lakebox.quality.contract import (
    COMPATIBLE_INFERRED,
    DISCARD_ROW,
    DISCARD_VALUE,
    EVOLVE,
    WAREHOUSE_TYPES,
    Column,
    Contract,
    LogicalType,
)
from lakebox.quality.gate import Checked, CheckResult, SetAside, blocking, failed, run_gate
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
RECORD = "lakebox_record"  # a row's number in its batch (from 1), under the discard modes
ORDER = "lakebox_batch_order"  # a batch's place in its chunk: under merge, the later one wins
MERGE_STAGE = "lakebox_merge_stage"  # the chunk's latest versions, in the warehouse, before they replace older ones

Disposition = Literal["append", "replace", "merge"]


@dataclass(frozen=True)
class Write:
    """How checked rows land in the raw table: `append` every row; `replace`, the table keeps
    only the rows of the fetch (landing run) being loaded; `merge`, one row per `key`, the
    latest version: the greatest `version` when given, else the later batch."""

    disposition: Disposition = "append"
    key: tuple[str, ...] = ()
    version: str | None = None


APPEND = Write()


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
    columns: dict[str, str] = dataclasses.field(default_factory=dict)  # the batch's columns, as read
    schema: Schema | None = None
    set_aside: SetAside | None = None

    @property
    def ok(self) -> bool:
        return not blocking(self.results)


def load_pending_batches(
    ctx: RunContext, contract: Contract, reader: BatchReader, hint: str, extra_checks: ExtraChecks | None = None,
    *, write: Write = APPEND, policy: str | None = None,
) -> StageResult:
    """Check each pending batch of the contract's source, oldest first; the gate loads or quarantines it."""
    ensure_raw_table(ctx, contract)
    check_landed(ctx, contract.source)
    return run_gate(ctx, ContractBatches(ctx, contract, reader, hint, extra_checks, write), policy)


class ContractBatches:
    """A contract's pending batches as a `GateSource`: read by `reader`, checked against the
    contract (and `extra`), loaded into its raw table."""

    noun = "batch"
    drift_hint = "the source changed shape: fix it, or change the contract if the change is intended"
    ledger_rows = True

    def __init__(
        self, ctx: RunContext, contract: Contract, reader: BatchReader, hint: str, extra: ExtraChecks | None,
        write: Write = APPEND,
    ) -> None:
        self.ctx, self.reader, self.hint, self.extra, self.write = ctx, reader, hint, extra, write
        self.contract = _evolved(ctx, contract) if contract.schema_mode == EVOLVE else contract
        self.source = contract.source
        self.waiting = ops.pending_batches(ctx.warehouse, contract.source)
        self._replaced = False
        self._rechecked = 0

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
                    for done in _check_window(ctx, self.contract, self.reader, window, start, tables, self.extra):
                        if chunk and done.meta.get("overlap") and contract.version_key:
                            yield from self._decided(chunk)  # its overlap is judged against what is loaded
                        evolves = self._evolve(done) if contract.schema_mode == EVOLVE else False
                        chunk.append(done)
                        bar.advance(1)
                        if not done.ok or evolves or len(chunk) >= CHUNK_BATCHES or \
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
        yield [Checked(c.batch_id, c.key, c.results, c.rows, item=c.meta.get("file"), load=c, set_aside=c.set_aside)
               for c in chunk]  # a landed file is named by its own name (meta `file`), a page by its lake object
        con = self.ctx.warehouse.scratch()
        for c in chunk:
            if c.owns:
                con.execute(f"drop table if exists {c.owns}")
        chunk.clear()

    def _evolve(self, done: _Checked) -> bool:
        """Evolve: a good batch's new columns join the contract (and, when it loads, the raw
        table). A batch checked before an earlier one of this run added its new column is
        checked again, against that column's type. True when the contract grew."""
        if not done.ok or done.schema is None or not done.schema.new:
            return False
        if any(name in self.contract.names for name in done.schema.new):
            if done.owns and not done.owns.startswith(f"{BATCH_RELATION}_group_"):  # a group's: its others need it
                self.ctx.warehouse.scratch().execute(f"drop table if exists {done.owns}")
            self._rechecked += 1
            _check_alone(self.ctx, self.contract, self.reader, done, f"again_{self._rechecked}", None, self.extra)
            if not done.ok or done.schema is None or not done.schema.new:
                return False
        added = tuple(Column(name, _logical(kind)) for name, kind in done.schema.new.items())
        self.contract = dataclasses.replace(self.contract, columns=self.contract.columns + added)
        for col in added:
            self.ctx.log.warning("schema evolved: a new column joins the raw table", source=self.source,
                                 batch_id=done.batch_id, column=col.name, type=col.type, table=self.contract.table)
        return True

    def load(self, good: list[Checked]) -> dict[str, int]:
        replace = None
        if self.write.disposition == "replace" and not self._replaced:
            replace = sorted({str(r[0]) for r in self.ctx.warehouse.query(
                "select distinct run_id from ops.batches where source = ? and status = 'landed' and run_id is not null",
                [self.source])})
        loaded = _load(self.ctx, self.contract, [c.load for c in good], self.write, replace)
        self._replaced = self._replaced or replace is not None
        return loaded


def _evolved(ctx: RunContext, contract: Contract) -> Contract:
    """The contract with the columns an earlier `evolve` added to its raw table (nullable, typed as there)."""
    schema, table = contract.table.split(".")
    lineage = {name for name, _ in contract.lineage}
    found = ctx.warehouse.query(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table])
    added = tuple(Column(str(name), _logical(str(kind))) for name, kind in found
                  if name not in contract.names and name not in lineage)
    return dataclasses.replace(contract, columns=contract.columns + added) if added else contract


def _logical(kind: str) -> LogicalType:
    """The logical type of a column typed `kind` (a DuckDB type a batch was read as, or a
    warehouse column's type); what no other type holds is kept as text."""
    base = re.sub(r"\(.*\)$", "", kind.upper()).strip()
    if base in COMPATIBLE_INFERRED["integer"]:
        return "integer"
    if base in COMPATIBLE_INFERRED["double"] or base in ("DOUBLE PRECISION", "REAL", "NUMERIC"):
        return "double"
    if base in ("BOOLEAN", "DATE"):
        return "boolean" if base == "BOOLEAN" else "date"
    return "timestamp" if base.startswith("TIMESTAMP") else "string"


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
        if (parsed.get("overlap") and contract.version_key) or landed_rows.get(batch_id, GROUP_ROWS + 1) > GROUP_ROWS \
                or contract.schema_mode in (DISCARD_ROW, DISCARD_VALUE) \
                or getattr(reader, "row_id", None):  # discards need each batch's records; a numbered one its own
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
        columns = {k: v for k, v in relation_columns(con, table).items() if k != GROUP_COLUMN}
        schema = schema_of(columns, contract)
        for n in numbers:
            relation = f"(select * exclude ({GROUP_COLUMN}) from {table} where {GROUP_COLUMN} = {n})"
            out[n].results = results[n] + (extra(con, relation) if extra else [])
            out[n].rows = int(counts.get(n, 0))
            out[n].columns, out[n].schema = columns, schema
            out[n].table = relation if out[n].ok else None
            grouped.add(n)
        out[numbers[-1]].owns = table
    for number, done in out.items():
        if number not in grouped:
            _check_alone(ctx, contract, reader, done, number, selects.get(number), extra)
    return [out[n] for n in sorted(out)]


def _check_alone(
    ctx: RunContext, contract: Contract, reader: BatchReader, done: _Checked, number: int | str, select: str | None,
    extra: ExtraChecks | None,
) -> None:
    """One batch read into its own scratch table (with `select`, when the reader gave one) and
    checked; under a discard mode its rows numbered, and what it sets aside found."""
    import duckdb

    con = ctx.warehouse.scratch()
    table = f"{BATCH_RELATION}_{number}"
    discarding = contract.schema_mode in (DISCARD_ROW, DISCARD_VALUE)
    row_id: str | None = getattr(reader, "row_id", None)  # a reader that numbers its rows (a file's lines) names the column
    numbered = RECORD if discarding else row_id
    try:
        select = select or reader.select_sql(con, ctx.lake.uri(done.key))
        if discarding and row_id:
            select = f"select * rename ({quote(row_id)} as {RECORD}) from ({select})"
        elif discarding:
            select = f"select *, row_number() over () as {RECORD} from ({select})"
        con.execute(f"create or replace temp table {table} as {select}")
    except duckdb.Error as exc:
        con.execute(f"drop table if exists {table}")
        done.results = [CheckResult("parse", None, False, 0, [], f"could not be parsed: {str(exc).splitlines()[0]}")]
        done.table = done.owns = None
        return
    done.columns = {k: v for k, v in relation_columns(con, table).items() if k != numbered}
    done.schema = schema_of(done.columns, contract)
    rows = f"(select * exclude ({quote(numbered)}) from {table})" if numbered else table
    done.results = check_relation(con, table, contract, numbered) + \
        (extra(con, rows) if extra else [])
    done.rows = _count(con, table)
    if discarding and failed(done.results) and all(r.check_name in DISCARDABLE for r in blocking(done.results)):
        table = _set_aside(con, contract, done, table)
    if done.ok:
        done.table = done.owns = table
    else:
        con.execute(f"drop table if exists {table}")
        done.table = done.owns = None


def _set_aside(con: Any, contract: Contract, done: _Checked, table: str) -> str:
    """Under a discard mode: find the batch's bad rows and values, mark its failed rules as
    set aside (with their record numbers), keep them for quarantine, and leave the rows that
    load (bad values as NULL under discard_value) in a table of their own, returned."""
    mode = contract.schema_mode
    found = discards(con, table, contract, RECORD, f"{table}_set_aside")
    records = {(rule, column): tuple(numbers) for rule, column, numbers in con.execute(
        f"select rule, column_name, list(record order by record)[1:1000] from {found.table} group by 1, 2").fetchall()}
    done.results = [r if r.passed else dataclasses.replace(r, action=mode, rows=records.get((r.check_name, r.column_name), ()))
                    for r in done.results]
    body, shown = set_aside_rows(con, found, table, RECORD)
    loaded = "the others loaded" if mode == DISCARD_ROW else "bad values loaded as NULL, the other rows loaded"
    done.results.append(CheckResult(
        mode, None, False, found.rows + found.values, shown[:5],
        f"{found.rows} row(s) and {found.values} value(s) set aside in quarantine ({loaded})", action=mode,
    ))
    done.set_aside = SetAside(mode, found.rows, found.values, body, shown)
    nulled = ", ".join(f"case when {pred} then null else {quote(name)} end as {quote(name)}"
                       for name, pred in found.nulls.items())
    kept = f"{table}_kept"
    con.execute(f"create or replace temp table {kept} as select * exclude ({RECORD})"
                f"{f' replace ({nulled})' if nulled else ''} from {table} where {found.keep}")
    con.execute(f"drop table if exists {found.table}")
    con.execute(f"drop table if exists {table}")
    return kept


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"select count(*) from {table}").fetchone()[0])


def _load(
    ctx: RunContext, contract: Contract, good: list[_Checked], write: Write = APPEND, replace: list[str] | None = None,
) -> dict[str, int]:
    """The good batches' rows into the raw table with one load, as `write` says; called inside
    the chunk's transaction. `replace`: the landing runs whose batches the raw table keeps
    (the first load of a `replace` run). Returns rows loaded per batch."""
    if not good:
        return {}
    wh = ctx.warehouse
    if contract.schema_mode == EVOLVE:
        _add_new_columns(ctx, contract)
    now = ops.utcnow().isoformat(sep=" ")
    parts = []
    for order, c in enumerate(good):
        table = c.table or ""  # a good batch always has its table
        lineage = (f"{literal(c.batch_id)} as batch_id, timestamp {literal(now)} as ingested_at, "
                   f"{literal(c.key)} as lake_path, {order} as {ORDER}")
        read = Schema([], [], c.schema.retyped if c.schema else frozenset(), {},
                      frozenset(n for n in contract.names if n not in c.columns) if c.columns else frozenset())
        select = f"select t.*, {lineage} from ({typed_select(table, contract, read)}) as t"
        overlap = c.meta.get("overlap")
        if overlap and contract.version_key:
            select += _skip_versions_already_loaded(ctx, contract, overlap, table)
        parts.append(select)
    union = " union all ".join(parts)
    by_batch = dict.fromkeys((c.batch_id for c in good), 0)
    scratch = wh.scratch()
    rows_table = f"{BATCH_RELATION}_rows"
    scratch.execute(f"create or replace temp table {rows_table} as {union}")
    columns = ", ".join(contract.raw_columns)
    try:
        if write.disposition == "merge":
            by_batch |= _merge(ctx, contract, write, rows_table)
        else:
            if replace is not None:
                _replace(ctx, contract, replace)
            by_batch |= dict(scratch.execute(f"select batch_id, count(*) from {rows_table} group by 1").fetchall())
            wh.load_from_scratch(f"select {columns} from {rows_table}", contract.table, contract.raw_columns)
    finally:
        wh.scratch().execute(f"drop table if exists {rows_table}")
    ctx.log.info("batches loaded", source=contract.source, batches=len(good), rows=sum(by_batch.values()),
                 table=contract.table, write=write.disposition)
    return by_batch


def _add_new_columns(ctx: RunContext, contract: Contract) -> None:
    """Evolve: the contract's columns the raw table lacks are added to it (in the load's transaction)."""
    schema, table = contract.table.split(".")
    have = {str(r[0]) for r in ctx.warehouse.query(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?", [schema, table])}
    for col in contract.columns:
        if col.name not in have:
            ctx.warehouse.execute(f"alter table {contract.table} add column {quote(col.name)} {WAREHOUSE_TYPES[col.type]}")
            ctx.log.warning("raw table evolved: column added", source=contract.source, table=contract.table,
                            column=col.name, type=WAREHOUSE_TYPES[col.type])


def _replace(ctx: RunContext, contract: Contract, runs: list[str]) -> None:
    """Replace: the raw table's rows of batches not landed by `runs` (the fetch being loaded) go."""
    marks = ", ".join("?" for _ in runs) or "null"
    ctx.warehouse.execute(
        f"delete from {contract.table} where batch_id not in (select batch_id from ops.batches "
        f"where source = ? and run_id in ({marks}))", [contract.source, *runs])


def _merge(ctx: RunContext, contract: Contract, write: Write, rows: str) -> dict[str, int]:
    """Merge: the chunk's latest version of each key (greatest `version`, else the later
    batch) replaces the raw table's row of that key, unless the raw table's is newer (a
    re-sent old version). Staged in the warehouse, then two deletes and an insert there."""
    wh = ctx.warehouse
    cols = ", ".join(contract.raw_columns)
    key = ", ".join(quote(k) for k in write.key)
    newest = (f"{quote(write.version)} desc nulls last, " if write.version else "") + f"{ORDER} desc"
    latest = f"select {cols} from {rows} qualify row_number() over (partition by {key} order by {newest}) = 1"
    wh.execute(f"drop table if exists {MERGE_STAGE}")
    wh.execute(f"create temp table {MERGE_STAGE} as select {cols} from {contract.table} where 1 = 0")
    wh.load_from_scratch(latest, MERGE_STAGE, contract.raw_columns)
    match = " and ".join(f"r.{quote(k)} = s.{quote(k)}" for k in write.key)
    if write.version:
        version = quote(write.version)
        wh.execute(f"delete from {MERGE_STAGE} as s using {contract.table} as r "
                   f"where {match} and r.{version} > s.{version}")
    wh.execute(f"delete from {contract.table} as r using {MERGE_STAGE} as s where {match}")
    wh.execute(f"insert into {contract.table} ({cols}) select {cols} from {MERGE_STAGE}")
    loaded = {str(b): int(n) for b, n in wh.query(f"select batch_id, count(*) from {MERGE_STAGE} group by 1")}
    wh.execute(f"drop table {MERGE_STAGE}")
    return loaded


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
