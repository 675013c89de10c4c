"""A run's pending retail files, checked in bulk, as the gate engine decides them.

Files are checked by kind, many at once: one `read_csv` over every pending file of a kind
(all columns as text, the header skipped because it was already checked exactly, ragged
rows caught as rejects with their line numbers), then the contract's rules over the lot.
Only when the lot fails are the failing files found, by halving the set, so a clean drop
costs one pass per kind. Rows carry their file's line number for error samples.

`stores.csv` is checked and decided first, on its own, since it decides which store ids
are known; then every other file, in day order. The gate (`quality.gate.run_gate`) decides
each of the two groups in one transaction (check results, quarantines, rows, 'loaded'
marks), so a crash leaves every file of it loaded or still pending, never half-loaded. A
pending version that a newer version of the same file replaced is never loaded
('superseded' in the ledger).

Policies (env `LAKEBOX_RETAIL_POLICY`):
  quarantine  (default) quarantine bad files, load the good ones; the run builds the marts
              and ends `partial` while quarantined files are open
  fail-fast   stop at the first bad file (in day order): quarantine it, load the days
              before it, leave its day (one day's drop is one unit) and later days pending,
              and fail the run
When every file of a run broke its header (the source changed shape) the run fails.
A loaded file resolves the open quarantined versions of the same file name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from lakebox.errors import SourceFailedError
from lakebox.ingest.batches import ensure_raw_table
from lakebox.ingest.landed import check_landed
from lakebox.pipelines.retail.contract import CONTRACTS, KIND_BY_NAME, KINDS, SOURCE, FileKind
from lakebox.pipelines.retail.filechecks import check_file_bytes
from lakebox.quality import check_relation, failed, typed_select
from lakebox.quality.checks import SAMPLE_ROWS
from lakebox.quality.contract import Column
from lakebox.quality.gate import Checked, CheckResult, policy_for, run_gate
from lakebox.runner import StageResult
from lakebox.warehouse import ops
from lakebox.warehouse.columns import temp_table
from lakebox.warehouse.sql import literal, quote

if TYPE_CHECKING:
    import duckdb

    from lakebox.runner import RunContext

HINT = (
    "fix the file at the store system and drop it again under the same name: a corrected file is "
    "a new version and replaces this one. The original bytes are kept here and in raw/."
)
_RAGGED = ("MISSING COLUMNS", "TOO MANY COLUMNS")


@dataclass
class DropFile:
    """One pending file version: a ledger batch plus what the gate found."""

    batch_id: str
    key: str
    name: str
    kind: FileKind | None
    date: str | None
    received_at: str
    results: list[CheckResult] = field(default_factory=list)
    rows: int = 0
    file_id: int = -1

    @property
    def day(self) -> str:
        return "" if self.kind is not None and self.kind.name == "stores" else (self.date or "")


def pending_files(ctx: RunContext) -> list[DropFile]:
    files = []
    for batch_id, key, meta_json in ops.pending_batches(ctx.warehouse, SOURCE):
        meta = orjson.loads(meta_json or "{}")
        files.append(DropFile(
            batch_id, key, meta.get("file") or key.rsplit("/", 1)[-1], KIND_BY_NAME.get(meta.get("kind") or ""),
            meta.get("date"), meta.get("received_at") or ops.utcnow().isoformat(),
        ))
    return files


def load_drops(ctx: RunContext, policy: str | None = None, today: dt.date | None = None) -> StageResult:
    """Gate and load every pending retail file; bad ones go to quarantine (see module doc)."""
    import duckdb

    for contract in CONTRACTS:
        ensure_raw_table(ctx, contract)
    files = _supersede_older_versions(ctx, pending_files(ctx))
    check_landed(ctx, SOURCE)  # after superseding: a replaced version never loads, whatever its state
    if not files:
        ctx.log.info("no pending retail files")
        return StageResult()
    con = duckdb.connect()  # private and order-preserving, so row order gives line numbers
    try:
        return run_gate(ctx, DropFiles(ctx, con, files, today or dt.date.today()),
                        policy or policy_for(ctx.settings, SOURCE))
    finally:
        con.close()


class DropFiles:
    """A run's pending retail files as a `GateSource`: stores.csv first, then the rest in
    day order; one day's drop is one unit under fail-fast."""

    source = SOURCE
    noun = "file"
    hint = HINT
    drift_hint = "the store system changed its export: fix it and drop the files again"
    ledger_rows = False  # a file keeps the rows counted when it landed

    def __init__(self, ctx: RunContext, con: duckdb.DuckDBPyConnection, files: list[DropFile], today: dt.date) -> None:
        self.ctx, self.con, self.files, self.today = ctx, con, files, today

    def pending(self) -> int:
        return len(self.files)

    def decisions(self) -> Generator[list[Checked]]:
        ctx = self.ctx
        stores = [f for f in self.files if f.kind is not None and f.kind.name == "stores"]
        others = [f for f in self.files if f.kind is None or f.kind.name != "stores"]
        for group in (stores, others):
            known = None if group is stores else _known_stores(ctx)
            if known is not None and not known and group:
                raise SourceFailedError(
                    f"source {SOURCE}: no stores.csv has been loaded yet, so store ids cannot be checked; "
                    f"{len(group)} file(s) stay pending until a valid stores.csv is dropped into {SOURCE}/ "
                    "in the landing folder" + "".join(f"\n  - quarantined {q.item}: {q.quarantine_path}"
                                                      for q in ctx.quarantined)
                )
            for kind in KINDS:
                _check_kind(ctx, self.con, kind, [f for f in group if f.kind is kind], known, self.today)
            for f in group:
                if f.kind is None:
                    f.results = [CheckResult("unknown_file", None, False, 0, [],
                                             "not a retail file: expected stores.csv, daily_sales_YYYY-MM-DD.csv, "
                                             "inventory_YYYY-MM-DD.csv or promotions_YYYY-MM-DD.csv")]
            if group:
                yield [Checked(f.batch_id, f.key, f.results, f.rows, item=f.name,
                               unit=f"the {f.day or 'stores'} drop", load=f) for f in _in_day_order(group)]

    def load(self, good: list[Checked]) -> dict[str, int]:
        return _load(self.ctx, self.con, [c.load for c in good])


def _in_day_order(files: list[DropFile]) -> list[DropFile]:
    order = {k.name: i for i, k in enumerate(KINDS)}
    return sorted(files, key=lambda f: (f.day, order.get(f.kind.name if f.kind else "", 99), f.name, f.received_at))


def _supersede_older_versions(ctx: RunContext, files: list[DropFile]) -> list[DropFile]:
    """A pending version of a file that a newer pending version replaces is never loaded."""
    newest: dict[str, DropFile] = {}
    for f in files:
        if f.name not in newest or f.received_at >= newest[f.name].received_at:
            newest[f.name] = f
    older = [f for f in files if newest[f.name] is not f]
    if older:
        ops.mark_batches(ctx.warehouse, [f.batch_id for f in older], ops.SUPERSEDED)
        ctx.log.info("older pending versions superseded", files=sorted({f.name for f in older}))
    return [f for f in files if newest[f.name] is f]


# ------------------------------------------------------------------ checking
def _check_kind(
    ctx: RunContext, con: duckdb.DuckDBPyConnection, kind: FileKind, files: list[DropFile],
    known: set[str] | None, today: dt.date,
) -> None:
    """Set `results` and `rows` on every file of one kind.

    The bodies of all files without a quote character are read as one CSV stream (DuckDB
    pays a fixed cost per file it opens): there a row is exactly one line, so the line a
    row came from names its file and its line in it. A file with quotes (where a value
    may span lines or a quote may be left open) is read on its own, so it cannot shift
    its neighbours' rows."""
    contract = kind.contract
    table = f"chk_{kind.name}"
    readable: list[tuple[DropFile, bytes]] = []
    for f in files:
        data = ctx.lake.read_bytes(f.key)
        f.results = check_file_bytes(data, contract, f.date, today)
        if not f.results:  # the body only, with the same line ending as every other file
            readable.append((f, data.partition(b"\n")[2].replace(b"\r\n", b"\n").rstrip(b"\r\n") + b"\n"))
    plain = [item for item in readable if b'"' not in item[1]]
    streams = ([plain] if plain else []) + [[item] for item in readable if b'"' in item[1]]
    columns = ", ".join(f"cast(null as varchar) as {quote(c)}" for c in contract.names)
    con.execute(f"create or replace temp table {table} as select {columns}, "
                "cast(null as bigint) as _file_id, cast(null as bigint) as _line limit 0")
    loaded: list[tuple[DropFile, int]] = []  # (file, first line in its stream)
    bad_lines: dict[int, list[CheckResult]] = {}
    for stream in streams:
        stream = _read_stream(con, contract, table, stream)
        if stream:
            loaded += _place_rows(con, table, stream, len(loaded), bad_lines)
    if not loaded:
        return
    temp_table(con, f"files_{kind.name}", {
        "_file_id": ("bigint", [f.file_id for f, _ in loaded]),
        "_file_date": ("varchar", [f.date for f, _ in loaded]),
        "batch_id": ("varchar", [f.batch_id for f, _ in loaded]),
        "lake_path": ("varchar", [f.key for f, _ in loaded]),
        "file_name": ("varchar", [f.name for f, _ in loaded]),
        "received_at": ("varchar", [f.received_at for f, _ in loaded]),
    })
    rows = dict(con.execute(f"select _file_id, count(*) from {table} group by _file_id").fetchall())
    gated = dataclasses.replace(
        contract,
        columns=contract.columns + (Column("_file_id", "integer"),),
        unique_key=("_file_id", *contract.unique_key),
    )
    per_file = _contract_results(con, table, gated, len(loaded))
    extra = _extra_results(con, kind, table, known, today)
    for f, _ in loaded:
        f.rows = int(rows.get(f.file_id, 0))
        f.results = [_for_file(r) for r in bad_lines.get(f.file_id, []) + per_file[f.file_id] +
                     extra.get(f.file_id, [])]


def _read_stream(
    con: duckdb.DuckDBPyConnection, contract: Any, table: str, stream: list[tuple[DropFile, bytes]]
) -> list[tuple[DropFile, bytes]]:
    """Read the stream into `<table>_read`; returns its files, less any DuckDB cannot read
    at all (those get a 'parse' result instead)."""
    import duckdb

    while stream:
        try:
            _read_csv(con, contract, f"{table}_read", [body for _, body in stream])
            return stream
        except duckdb.Error:  # rare: find the files that cannot be read, set them aside
            errors = {id(f): error for f, body in stream if (error := _parse_error(con, contract, body))}
            if not errors:
                raise
            for f, _ in stream:
                if id(f) in errors:
                    f.results = [CheckResult("parse", None, False, 0, [], f"not readable as CSV: {errors[id(f)]}")]
            stream = [(f, body) for f, body in stream if id(f) not in errors]
    return stream


def _read_csv(con: duckdb.DuckDBPyConnection, contract: Any, target: str, bodies: list[bytes]) -> None:
    """Concatenated bodies into `target` (every value as text, in order) and `rejects`."""
    import tempfile

    columns = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in contract.names) + "}"
    names = ", ".join(quote(c) for c in contract.names)
    with tempfile.NamedTemporaryFile(suffix=".csv") as stream:
        stream.write(b"".join(bodies))
        stream.flush()
        con.execute("drop table if exists rejects; drop table if exists rejects_scan")
        con.execute(
            f"create or replace temp table {target} as select row_number() over () as _seq, {names} "
            f"from read_csv({literal(stream.name)}, header = false, auto_detect = false, delim = ',', quote = '\"', "
            f"escape = '\"', new_line = '\\n', columns = {columns}, store_rejects = true, "
            f"rejects_table = 'rejects', rejects_scan = 'rejects_scan')"
        )


def _parse_error(con: duckdb.DuckDBPyConnection, contract: Any, body: bytes) -> str | None:
    """Why DuckDB cannot read this one file body at all, or None when it can."""
    import duckdb

    try:
        _read_csv(con, contract, "probe_read", [body])
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    return None


def _place_rows(
    con: duckdb.DuckDBPyConnection, table: str, stream: list[tuple[DropFile, bytes]], first_id: int,
    bad_lines: dict[int, list[CheckResult]],
) -> list[tuple[DropFile, int]]:
    """Append the stream's rows to `table` with their file id and line; note rejected lines."""
    placed, next_line = [], 1
    for offset, (f, body) in enumerate(stream):
        f.file_id = first_id + offset
        placed.append((f, next_line))
        next_line += body.count(b"\n")
    temp_table(con, "stream_files", {
        "_file_id": ("bigint", [f.file_id for f, _ in placed]),
        "_start": ("bigint", [start for _, start in placed]),
    })
    (skipped,) = con.execute("select count(*) from rejects").fetchone() or (0,)
    if skipped:  # rejected lines are not in the table: map row positions back to stream lines
        con.execute(
            f"""create or replace temp table stream_lines as
            with candidates as (select unnest(generate_series(1, {next_line - 1})) as line),
            kept as (select line from candidates where line not in (select line from rejects))
            select line, row_number() over (order by line) as position from kept"""
        )
        positioned = f"select r.*, l.line as _g from {table}_read r join stream_lines l on l.position = r._seq"
        bad_lines.update(_reject_results(con))
    else:
        positioned = f"select *, _seq as _g from {table}_read"
    con.execute(
        f"insert into {table} select r.* exclude (_seq, _g), f._file_id, cast(r._g - f._start + 2 as bigint) "
        f"from ({positioned}) r asof join stream_files f on r._g >= f._start"
    )
    con.execute(f"drop table {table}_read")
    return placed


def _reject_results(con: duckdb.DuckDBPyConnection) -> dict[int, list[CheckResult]]:
    """Rows DuckDB could not split into the header's columns, by file, with file line numbers."""
    found = con.execute(
        f"with e as (select f._file_id, r.error_type, r.line - f._start + 2 as line, r.csv_line "
        f"  from rejects r asof join stream_files f on r.line >= f._start) "
        f"select _file_id, error_type, count(distinct line), "
        f"list({{'_line': line, 'csv_line': csv_line}} order by line)[1:{SAMPLE_ROWS}] "
        f"from e group by all"
    ).fetchall()
    out: dict[int, list[CheckResult]] = {}
    for file_id, error_type, count, sample in found:
        rule = "ragged_rows" if error_type in _RAGGED else "parse"
        detail = f"{count} row(s) that do not split into the header's columns ({error_type.lower()})"
        out.setdefault(file_id, []).append(CheckResult(rule, None, False, int(count), list(sample), detail))
    return out


def _contract_results(
    con: duckdb.DuckDBPyConnection, table: str, contract: Any, n_files: int
) -> dict[int, list[CheckResult]]:
    """The contract's rules per file: one pass over all files, halving only where something fails."""
    def over(lo: int, hi: int) -> list[CheckResult]:
        relation = f"(select * from {table} where _file_id between {lo} and {hi})"
        return check_relation(con, relation, contract, row_id="_line")

    found: dict[int, list[CheckResult]] = {}

    def search(lo: int, hi: int, results: list[CheckResult]) -> None:
        if not failed(results):
            return
        if lo == hi:
            found[lo] = results
            return
        mid = (lo + hi) // 2
        search(lo, mid, over(lo, mid))
        search(mid + 1, hi, over(mid + 1, hi))

    everything = over(0, n_files - 1)
    search(0, n_files - 1, everything)
    passing = [dataclasses.replace(r, passed=True, failing_rows=0, sample=[]) for r in everything]
    return {i: found.get(i, passing) for i in range(n_files)}


def _extra_results(
    con: duckdb.DuckDBPyConnection, kind: FileKind, table: str, known: set[str] | None, today: dt.date
) -> dict[int, list[CheckResult]]:
    """Rules beyond one file's contract: known stores, the file's own date, dates in the future."""
    rules: list[tuple[str, str, str, str]] = []  # (rule, column, failing-row predicate, detail)
    if known is not None:
        temp_table(con, "known_stores", {"store_id": ("varchar", sorted(known))})
        rules.append(("known_store", "store_id", "store_id not in (select store_id from known_stores)",
                      "store ids that are not in stores.csv"))
    if kind.date_column:
        d = quote(kind.date_column)
        rules.append(("file_date", kind.date_column,
                      f"try_cast({d} as date) <> cast(_file_date as date)",
                      "rows dated another day than the file's name"))
        rules.append(("future_date", kind.date_column, f"try_cast({d} as date) > date {literal(today.isoformat())}",
                      f"rows dated after today ({today})"))
    if kind.name == "promotions":
        rules.append(("date_order", "end_date", "try_cast(end_date as date) < try_cast(start_date as date)",
                      "promotions that end before they start"))
    if not rules:
        return {}
    relation = f"(select t.*, f._file_date from {table} t join files_{kind.name} f using (_file_id))"
    counts = ", ".join(f"count_if({pred})" for _, _, pred, _ in rules)
    out: dict[int, list[CheckResult]] = {}
    for file_id, *failing in con.execute(f"select _file_id, {counts} from {relation} group by _file_id").fetchall():
        results = []
        for (rule, column, pred, detail), n in zip(rules, failing, strict=True):
            sample = []
            if n:
                cur = con.execute(
                    f"select * exclude (_file_date) from {relation} where _file_id = ? and {pred} "
                    f"order by _line limit {SAMPLE_ROWS}", [file_id])
                names = [d[0] for d in cur.description]
                sample = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            results.append(CheckResult(rule, column, n == 0, int(n), sample, detail))
        out[file_id] = results
    return out


def _register(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> None:
    """DuckDB refuses to register while a query's result is unread (a fetchone); finish it first."""
    con.complete()
    con.register(name, table)


def _for_file(r: CheckResult) -> CheckResult:
    """A result as one file's: without the file id the bulk check keyed on."""
    if r.passed and r.check_name != "unique":
        return r
    sample = [{k: (str(v) if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in s.items() if k != "_file_id"}
              if isinstance(s, dict) else s for s in r.sample]
    column = r.column_name.removeprefix("_file_id, ") if r.column_name else None
    return dataclasses.replace(r, column_name=column, sample=sample)


def _known_stores(ctx: RunContext) -> set[str]:
    """Store ids of the newest loaded version of stores.csv."""
    rows = ctx.warehouse.query(
        "select distinct store_id from raw.retail_stores where batch_id = ("
        "  select batch_id from raw.retail_stores order by ingested_at desc, batch_id desc limit 1)"
    )
    return {r[0] for r in rows}


# ------------------------------------------------------------------ loading
def _load(ctx: RunContext, con: duckdb.DuckDBPyConnection, files: list[DropFile]) -> dict[str, int]:
    """The good files' rows, by kind; called inside the gate's transaction, so a crash
    leaves all of them pending, none half-loaded. Returns rows per file."""
    wh = ctx.warehouse
    scratch = wh.scratch()
    total = 0
    for kind in KINDS:
        chosen = [f for f in files if f.kind is kind]
        if not chosen:
            continue
        ids = ", ".join(str(f.file_id) for f in chosen)
        relation = (
            f"(select t.*, f.batch_id, cast(f.received_at as timestamp) as ingested_at, f.lake_path, f.file_name "
            f"from chk_{kind.name} t join files_{kind.name} f using (_file_id) where t._file_id in ({ids}))"
        )
        lineage = ", ".join(name for name, _ in kind.contract.lineage)
        select = typed_select(relation, kind.contract).replace(" from ", f", {lineage} from ", 1)
        con.complete()
        rows = con.sql(select).to_arrow_table()
        view = f"retail_{kind.name}_rows"
        _register(scratch, view, rows)
        try:
            total += wh.load_from_scratch(f"select * from {view}", kind.contract.table, kind.contract.raw_columns)
        finally:
            scratch.unregister(view)
    days = sorted({f.day for f in files if f.day})
    ctx.log.info("retail files loaded", files=len(files), rows=total,
                 days=f"{days[0]}..{days[-1]}" if days else "stores")
    return {f.batch_id: f.rows for f in files}
