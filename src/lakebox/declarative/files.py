"""The `files` source of a declarative pipeline: a folder of dropped CSV, JSON lines or Parquet files.

Landing (`land`): each resource takes the files of the landing folder whose names match its
`glob` (fnmatch, on the name; the folder's sub-folders are not read) and lands each new one
into raw/<pipeline>_<resource>/ as received, pending in the ledger with its file name and,
with `partition_pattern`, the date its group 1 captures (YYYY-MM-DD or YYYYMMDD, kept as
YYYY-MM-DD). A batch's id comes from its bytes: the same bytes again are a no-op, a
corrected file under the same name is a new batch (a new version of that file). A file
listed with the stamp it had when last read is not read again. The folder is `landing` in
pipeline.toml (a path relative to the pipeline's folder, an absolute path or s3://...),
else `<LAKEBOX_LANDING>/<pipeline>`.

A file whose name `partition_pattern` does not match (or whose capture is not a date) is
landed and quarantined, naming the file, the pattern and what to do: rename the file, or
change the pattern. The same bytes under a matching name, or the same file once the
pattern matches it, are pending again, and the item is settled when they load.

Reading (`reader_for`): DuckDB reads each file whole (vectorized), with column names
normalised as dlt does (`Country Name` -> `country_name`) and each row's line or record
number in LINE_COLUMN, so a check names the line a bad value is on:
- csv: every value as text (the contract's checks, not the parser, decide types), quotes
  and escapes `"` (RFC 4180), a row that does not split into the header's columns is an
  error naming its line. Without a header the columns are the contract's columns in the
  order declared, and `column_<n>` (its 1-based position) beyond them. The line number
  counts the header and line breaks inside quoted values; DuckDB skips blank lines, so a
  blank line above a row is not counted.
- jsonl: one JSON object per line; every top-level field as text (nested objects and
  lists as their JSON text); the number is the record's (1 for the first object).
- parquet: the file's own column types; the number is the row's (1 for the first).
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lakebox.declarative.names import normalise, normalise_all
from lakebox.ingest import files
from lakebox.ingest.files import SEEN_STATE, landing_files, stamp
from lakebox.lake import BatchManifest, batch_id_for
from lakebox.log import progress
from lakebox.stage import StageResult
from lakebox.warehouse import ops
from lakebox.warehouse.sql import literal, quote

if TYPE_CHECKING:
    from lakebox.declarative.config import PipelineConfig, ResourceConfig
    from lakebox.settings import Settings
    from lakebox.stage import RunContext

LINE_COLUMN = "_line"  # each row's line/record number in its file: the column quality.gate.row_numbers reads
UNMATCHED_STATE = "landing_unmatched"  # file name -> the partition_pattern its name did not match
FILE_NAME_RULE = "file_name"
_PLAIN = "hive_partitioning = false"  # the lake's `ingest_date=` folder is not a column of the file
_COMPRESSED = (".gz", ".zst")  # kept on the lake object, so DuckDB reads it decompressed


def landing_url(settings: Settings, config: PipelineConfig) -> str:
    """The pipeline's landing folder: `landing` of pipeline.toml, else `<LAKEBOX_LANDING>/<pipeline>`."""
    given = config.source.landing
    if not given:
        return f"{settings.landing.rstrip('/')}/{config.name}"
    if "://" in given:
        return given.rstrip("/")
    path = Path(given).expanduser()
    return str(path if path.is_absolute() else config.folder / path)


def waiting(settings: Settings, config: PipelineConfig) -> tuple[tuple[str, str], ...]:
    """Name and stamp of every file of a resource waiting in the landing folder, for `lakebox
    watch` and the drop sensor: a new or changed file changes it, without reading any file."""
    listed = files.landing_fingerprint(landing_url(settings, config), settings.env)
    globs = [r.glob for r in config.source.resources if r.glob]
    return tuple((name, stamped) for name, stamped in listed if any(fnmatch.fnmatchcase(name, g) for g in globs))


def land(ctx: RunContext, config: PipelineConfig) -> StageResult:
    """Land every new file of each resource into the raw lake, pending in the ledger (see module doc)."""
    from lakebox.lake.remote import fs_for_url

    url = landing_url(ctx.settings, config)
    fs, root = fs_for_url(url, ctx.settings.env)
    entries = landing_files(fs, root)
    if entries is None:
        ctx.log.info("no landing folder yet", pipeline=config.name, landing=url)
        return StageResult()
    claimed: set[str] = set()
    rows = 0
    for resource in config.source.resources:
        mine = [e for e in entries if fnmatch.fnmatchcase(posixpath.basename(e["name"]), resource.glob or "")]
        claimed.update(e["name"] for e in mine)
        rows += _land_resource(ctx, config, resource, fs, mine)
    others = sorted(posixpath.basename(e["name"]) for e in entries if e["name"] not in claimed)
    if others:
        ctx.log.warning("files in the landing folder that no resource's glob matches are left alone",
                        pipeline=config.name, landing=url, files=len(others), first=others[:5],
                        globs=[r.glob for r in config.source.resources])
    return StageResult(rows_in=rows, rows_out=rows)


@dataclass
class _Landing:
    """One resource's landing in progress: what is new, what is misnamed, what is renamed."""

    landed: list[BatchManifest] = field(default_factory=list)
    misnamed: list[tuple[BatchManifest, str]] = field(default_factory=list)  # (manifest, why)
    renamed: dict[str, dict[str, Any]] = field(default_factory=dict)  # known batch id -> its meta under the new name
    skipped: int = 0
    rows: int = 0


def _land_resource(ctx: RunContext, config: PipelineConfig, resource: ResourceConfig, fs: Any,
                   entries: list[dict[str, Any]]) -> int:
    """Land the new files of one resource; returns the rows they hold."""
    wh = ctx.warehouse
    source = config.ledger_source(resource)
    seen: dict[str, str] = orjson.loads(ops.get_state(wh, source, SEEN_STATE) or "{}")
    unmatched: dict[str, str] = orjson.loads(ops.get_state(wh, source, UNMATCHED_STATE) or "{}")
    pattern = resource.partition_pattern
    days: tuple[str, str] | None = ctx.extras.get("days")  # a scheduler's day partitions: those days' files only
    todo = []
    out = _Landing()
    for entry in entries:
        name, stamped = posixpath.basename(entry["name"]), stamp(entry)
        date, why = partition_date(resource, name)
        if days and date and not days[0] <= date <= days[1]:
            continue
        pattern_changed = name in unmatched and unmatched[name] != pattern
        if stamped and seen.get(name) == stamped and not pattern_changed:  # listed before, unchanged: not read
            out.skipped += 1
            continue
        todo.append((entry, name, stamped, date, why))
    known = ops.ledger.known_batches(wh, source)
    now = dt.datetime.now(dt.UTC)
    received = now.replace(tzinfo=None).isoformat(sep=" ")
    with progress(f"landing {source}", total=len(todo)) as bar:
        for entry, name, stamped, date, why in todo:
            data = bytes(fs.cat_file(entry["name"]))
            bar.advance(1)
            seen[name] = stamped
            meta: dict[str, Any] = {"file": name, "date": date, "received_at": received}
            if why:
                unmatched[name] = meta["unmatched"] = pattern or ""
            else:
                unmatched.pop(name, None)
            batch_id = batch_id_for(source, data)
            if batch_id in known:  # these bytes landed before: under a name that now dates them, pending again
                if not why:
                    out.renamed[batch_id] = meta
                out.skipped += 1
                continue
            count = None if _compression(name) else _rows(resource, data)
            manifest = ctx.lake.land_batch(source, data, _extension(resource, name), rows=count, meta=meta,
                                           fetched_at=now, durable=False)
            known.add(batch_id)
            if why:
                out.misnamed.append((manifest, why))
            else:
                out.landed.append(manifest)
                out.rows += count or 0
    ctx.lake.sync()  # one flush for every copy, before the ledger relies on them
    with wh.transaction():
        new = ops.record_landed_many(wh, out.landed, ctx.run_id)
        reopened = _reopen_renamed(ctx, source, out.renamed)
        for manifest, why in out.misnamed:
            _quarantine_misnamed(ctx, config, resource, manifest, why)
        ops.set_state(wh, source, SEEN_STATE, orjson.dumps(seen).decode())
        ops.set_state(wh, source, UNMATCHED_STATE, orjson.dumps(unmatched).decode())
    ctx.log.info("files landed", source=source, new=new, already_seen=out.skipped, misnamed=len(out.misnamed),
                 renamed=reopened)
    return out.rows


def partition_date(resource: ResourceConfig, name: str) -> tuple[str | None, str | None]:
    """(the date `partition_pattern`'s group 1 captures in a file name, as YYYY-MM-DD; or None
    and why not). (None, None) for a resource without a pattern."""
    if not resource.partition_pattern:
        return None, None
    pattern = resource.partition_pattern
    match = re.search(pattern, name)
    if match is None or not match.groups() or match.group(1) is None:
        return None, (f"file {name!r} does not match partition_pattern {pattern!r} of resource "
                      f"{resource.name!r}, so its date cannot be told")
    try:
        return dt.date.fromisoformat(match.group(1)).isoformat(), None
    except ValueError:
        return None, (f"file {name!r}: partition_pattern {pattern!r} of resource {resource.name!r} captures "
                      f"{match.group(1)!r}, which is not a date (YYYY-MM-DD or YYYYMMDD)")


def _misnamed_hint(config: PipelineConfig, resource: ResourceConfig) -> str:
    return (f"rename the file so that partition_pattern {resource.partition_pattern!r} captures its date "
            f"(YYYY-MM-DD or YYYYMMDD) in group 1 and drop it again, or change partition_pattern of resource "
            f"{resource.name!r} in {config.path}; the next run lands it and this item is settled when it loads. "
            "The original bytes are kept here and in raw/.")


def _quarantine_misnamed(ctx: RunContext, config: PipelineConfig, resource: ResourceConfig,
                         manifest: BatchManifest, why: str) -> None:
    """Record a misnamed file landed and quarantine it at once: its rows cannot be dated."""
    from lakebox.quality import gate

    if not ops.record_landed(ctx.warehouse, manifest, ctx.run_id):
        return  # the same bytes were judged before
    sample = [{"file": manifest.meta["file"], "partition_pattern": resource.partition_pattern}]
    result = gate.CheckResult(FILE_NAME_RULE, None, False, 0, sample, why)
    gate.quarantine_unreadable(ctx, source=manifest.source, batch_id=manifest.batch_id, lake_key=manifest.key,
                               result=result, hint=_misnamed_hint(config, resource))


def _reopen_renamed(ctx: RunContext, source: str, renamed: dict[str, dict[str, Any]]) -> int:
    """Known bytes under a name that now matches: a batch quarantined only for its name is pending again."""
    if not renamed:
        return 0
    reopened = 0
    for batch_id, old in ops.ledger.batch_meta(ctx.warehouse, list(renamed)).items():
        if old.get("unmatched") is not None and ops.ledger.reopen(ctx.warehouse, batch_id, renamed[batch_id]):
            ctx.log.info("a file quarantined for its name is pending again", source=source, batch_id=batch_id,
                         was=old.get("file"), file=renamed[batch_id]["file"], date=renamed[batch_id]["date"])
            reopened += 1
    return reopened


def _rows(resource: ResourceConfig, data: bytes) -> int | None:
    """Rows a landed file holds, as the ledger's first count (the loader's count replaces it):
    lines (less the header) for text, the footer's count for Parquet; None when unknown
    (a compressed file)."""
    if resource.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows)
        except (pa.ArrowException, OSError):
            return None  # not Parquet: the loader names it
    body = data.rstrip(b"\r\n")
    lines = body.count(b"\n") + 1 if body else 0
    return max(lines - 1, 0) if resource.format == "csv" and resource.header else lines


def _compression(name: str) -> str:
    return next((suffix for suffix in _COMPRESSED if name.lower().endswith(suffix)), "")


def _extension(resource: ResourceConfig, name: str) -> str:
    return resource.format + _compression(name)


# ------------------------------------------------------------------ reading
def reader_for(config: PipelineConfig, resource: ResourceConfig) -> FileReader:
    """How the loader reads a landed file of `resource` as rows (see module doc)."""
    return FileReader(resource.format, resource.delimiter, resource.header,
                      tuple(c.name for c in resource.contract.columns))


def header_names(header: Sequence[str]) -> list[str]:
    """A CSV header's column names, normalised (`normalise_all`); a name given twice keeps both (`x`, `x_2`)."""
    if len(set(header)) == len(header):
        mapping = normalise_all(header)
        return [mapping[name] for name in header]
    taken: dict[str, int] = {}
    out = []
    for name in header:
        base = normalise(name)
        taken[base] = taken.get(base, 0) + 1
        out.append(base if taken[base] == 1 else f"{base}_{taken[base]}")
    return out


def headerless_names(width: int, contract: Sequence[str]) -> list[str]:
    """A headerless CSV's columns: the contract's, in order, then `column_<n>` (1-based)."""
    return [contract[i] if i < len(contract) else f"column_{i + 1}" for i in range(width)]


class FileReader:
    """Reads one landed file as rows with normalised column names and LINE_COLUMN
    (a `BatchReader`). Each file is one DuckDB query, parallel inside the file. `row_id`
    names the numbering column for the checks (`check_relation(..., row_id=)`): it is
    not a column of the data, so it is never drift and never loaded."""

    row_id = LINE_COLUMN

    def __init__(self, format: str, delimiter: str = ",", header: bool = True, contract: Sequence[str] = ()) -> None:
        self.format, self.delimiter, self.header, self.contract = format, delimiter, header, tuple(contract)

    def prepare(self, con: Any, uris: list[str]) -> None:
        """Nothing to do ahead: a file's columns are read when its select is asked for."""

    def select_sql(self, con: Any, uri: str) -> str:
        if self.format == "csv":
            return self._csv(con, uri)
        if self.format == "jsonl":
            return self._jsonl(con, uri)
        if self.format == "parquet":
            source = f"read_parquet({literal(uri)}, {_PLAIN})"
            names = [row[0] for row in con.execute(f"describe select * from {source}").fetchall()]
            return _numbered(source, names, header_names(names))
        raise ValueError(f"unknown file format {self.format!r}: expected csv, jsonl or parquet")

    def _csv(self, con: Any, uri: str) -> str:
        first = self._first_record(con, uri)
        if first is None:  # an empty file
            if self.header:
                return f"select error({literal('the file is empty: not even a header line')})"
            return _no_rows(self.contract)
        names = header_names(first) if self.header else headerless_names(len(first), self.contract)
        declared = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names))) + "}"
        source = (f"read_csv({literal(uri)}, header = false, auto_detect = false, columns = {declared}, "
                  f"delim = {literal(self.delimiter)}, quote = '\"', escape = '\"', {_PLAIN})")
        # the first line of each row: its record number, plus the line breaks inside quoted values above it
        breaks = " + ".join(f"coalesce(length(c{i}) - length(replace(c{i}, chr(10), '')), 0)" for i in range(len(names)))
        columns = ", ".join(f"c{i} as {quote(name)}" for i, name in enumerate(names))
        line = "lakebox_n + sum(lakebox_breaks) over (rows between unbounded preceding and current row) - lakebox_breaks"
        aliases = ", ".join([*(f"c{i}" for i in range(len(names))), "lakebox_n"])
        numbered = (f"select {columns}, lakebox_n, cast({line} as bigint) as {LINE_COLUMN} from "
                    f"(select *, {breaks} as lakebox_breaks from {source} with ordinality as t({aliases}))")
        skip = " where lakebox_n > 1" if self.header else ""
        return f"select * exclude (lakebox_n) from ({numbered}){skip}"

    def _first_record(self, con: Any, uri: str) -> list[str] | None:
        """The file's first line split into values (None: an empty file), read as one text column."""
        rows = con.execute(
            f"select line from read_csv({literal(uri)}, header = false, auto_detect = false, "
            f"columns = {{'line': 'VARCHAR'}}, delim = '\x1e', quote = '', escape = '', strict_mode = false, {_PLAIN}) "
            "with ordinality as t(line, n) where n = 1 limit 1"
        ).fetchall()
        if not rows:
            return None
        line = rows[0][0] or ""
        if len(self.delimiter) == 1:
            return next(csv.reader([line], delimiter=self.delimiter, quotechar='"', doublequote=True))
        return line.split(self.delimiter)

    def _jsonl(self, con: Any, uri: str) -> str:
        names = [row[0] for row in con.execute(
            f"describe select * from read_json({literal(uri)}, format = 'newline_delimited', sample_size = -1, {_PLAIN})"
        ).fetchall()]
        if names == ["json"]:  # what DuckDB says of an empty file, or of lines that are not objects
            others, total = con.execute(
                f"select count_if(json_type(json) <> 'OBJECT'), count(*) from read_json_objects({literal(uri)}, "
                f"format = 'newline_delimited', {_PLAIN})").fetchall()[0]
            if not total:
                return _no_rows(self.contract)
            if others:
                return f"select error({literal('the lines are not JSON objects: expected one object per line')})"
        declared = "{" + ", ".join(f"{literal(name)}: 'VARCHAR'" for name in names) + "}"
        source = f"read_json({literal(uri)}, format = 'newline_delimited', columns = {declared}, {_PLAIN})"
        return _numbered(source, names, header_names(names))


def _numbered(source: str, original: Sequence[str], names: Sequence[str]) -> str:
    """`source`'s columns under their normalised names, numbered from 1 in file order."""
    aliases = ", ".join([*(f"c{i}" for i in range(len(original))), "lakebox_n"])
    columns = ", ".join(f"c{i} as {quote(name)}" for i, name in enumerate(names))
    return f"select {columns}, lakebox_n as {LINE_COLUMN} from {source} with ordinality as t({aliases})"


def _no_rows(contract: Sequence[str]) -> str:
    """An empty file's rows: none, with the contract's columns, so it is not taken for drift."""
    columns = "".join(f"cast(null as varchar) as {quote(name)}, " for name in contract)
    return f"select {columns}cast(null as bigint) as {LINE_COLUMN} limit 0"
