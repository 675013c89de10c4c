"""Reads landed JSON API pages as rows, wherever in the page the records sit.

A records path (dlt's `data_selector`) says where: a dotted path to the list of records
(`data`, `result.items`; `$.records` and `$.value` are the same with a `$.` prefix), or
`""`/`$` when the page is the list. The same path drives both the REST source (which
counts a page's records) and this reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from lakebox.errors import ConfigError
from lakebox.warehouse.sql import literal, quote

MAX_PAGE_BYTES = 64 << 20  # DuckDB buffers twice this; a 10k-record page is ~2 MB
FILE_COLUMN = "lakebox_source_file"  # the column naming each row's page when pages are parsed together
EMPTY = "EMPTY"  # what `records_structure` says of an empty records list
_PART = re.compile(r"[^.\s\[\]*]+")  # one field of a dotted path: no dot, space, brackets or wildcard
_WHOLE = "lakebox_record"  # the column a bare-array page's records are read into
_STRUCTURE = "json_structure(content)"

RecordsPath = tuple[str, ...]  # the fields leading to the records; () when the page is the list


def records_path(path: str) -> RecordsPath:
    """The fields of a records path: `result.items` or `$.result.items` -> ("result", "items");
    `""` or `$` (the page is the list) -> ()."""
    dotted = path[2:] if path.startswith("$.") else "" if path == "$" else path
    parts = tuple(dotted.split(".")) if dotted else ()
    if not all(_PART.fullmatch(part) for part in parts):
        raise ConfigError(f"records path {path!r} is not supported; use a dotted path to the list of records "
                          "(e.g. 'data', 'result.items', or '$.value'), or '' when the page itself is the list")
    return parts


def records_at(doc: Any, path: str | RecordsPath) -> list[Any]:
    """The records of a parsed page; KeyError or TypeError when the page has none where expected."""
    records = doc
    for part in records_path(path) if isinstance(path, str) else path:
        if not isinstance(records, dict):
            raise TypeError(f"{path!r}: {part!r} is inside a {type(records).__name__}, not an object")
        records = records[part]
    if not isinstance(records, list):
        raise TypeError(f"{path!r} is not a list")
    return records


def page_structure(con: Any, uri: str) -> Any:
    """One page's json_structure, parsed: declaring a page's fields from it is much faster
    than DuckDB's own schema inference. Raises duckdb.Error when the page is not JSON."""
    import orjson

    structure = con.execute(f"select {_STRUCTURE} from read_text({literal(uri)})").fetchall()[0][0]
    return orjson.loads(structure) if structure else None


def page_structures(con: Any, uris: list[str]) -> dict[str, Any]:
    """`page_structure` of several pages; DuckDB reads text files on one thread per query,
    so the pages are split over one cursor (connection) per core."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import orjson

    workers = max(1, min(len(uris), os.cpu_count() or 1, 4))

    def structures(part: list[str]) -> list[tuple[str, Any]]:
        listed = ", ".join(literal(u) for u in part)
        rows = con.cursor().execute(f"select filename, {_STRUCTURE} from read_text([{listed}])").fetchall()
        return [(uri, orjson.loads(structure) if structure else None) for uri, structure in rows]

    with ThreadPoolExecutor(workers) as pool:
        return dict(row for part in pool.map(structures, [uris[i::workers] for i in range(workers)]) for row in part)


def records_structure(page: Any, path: str | RecordsPath | None) -> Any:
    """The records' part of a page's structure: their merged fields (a dict of name -> type)
    when they are a list of objects, EMPTY when the list is empty, else None. `path` is a
    records path's fields (a single field as a str; None or () for a bare array)."""
    listed = page
    for part in (path,) if isinstance(path, str) else path or ():
        listed = listed.get(part) if isinstance(listed, dict) else None
    if isinstance(listed, list) and listed and isinstance(listed[0], dict):
        return listed[0]
    return EMPTY if listed in (["NULL"], []) else None


def read_json_sql(uris: list[str], columns: Mapping[str, str], *, array: bool = False, records: bool = True,
                  filename: bool = False) -> str:
    """read_json over pages with every top-level field declared (name -> DuckDB type): DuckDB
    reads a page with an undeclared field ~15x slower. `array` for a bare JSON array,
    `records=False` to read each element whole, `filename` to name each row's page."""
    declared = "{" + ", ".join(f"{literal(name)}: {literal(kind)}" for name, kind in columns.items()) + "}"
    listed = ", ".join(literal(u) for u in uris)
    options = ("format = 'array', " if array else "") + ("" if records else "records = false, ")
    extra = f", filename = {literal(FILE_COLUMN)}" if filename else ""
    return f"read_json([{listed}], {options}maximum_object_size = {MAX_PAGE_BYTES}, columns = {declared}{extra})"


class PageReader:
    """Reads API pages as rows, typed as each page itself says, so drift shows up as drift.

    DuckDB's schema inference over one large JSON object is slow (~1.2 s per 100k records)
    and reads one file on one thread. So `prepare` takes several pages at once: one
    json_structure pass gives each page's fields (~0.2 s per 100k), then pages of the same
    shape are parsed together with their fields declared (DuckDB spreads files over its
    threads), and `select_sql` picks one page's rows out of that table. A page of another
    shape, or one that cannot be read, is read on its own so it is named alone. Every
    field of a page on the way to the records is declared (the others as JSON): DuckDB reads
    a page with an undeclared field ~15x slower. Nested objects stay JSON columns. `renames`
    maps a record's field names to column names, so a source's own spelling
    (`NumericValue`) reads as the contract's (`numeric_value`); `name_columns` names the
    other fields of each page's records (e.g. dlt's normalisation, `Country Name` ->
    `country_name`; given every field name of the page, it returns name -> column), the
    rest keep their names.
    """

    def __init__(self, records: str = "$.records", renames: Mapping[str, str] | None = None,
                 name_columns: Callable[[list[str]], Mapping[str, str]] | None = None) -> None:
        self.records = records
        self._path = records_path(records)
        self._renames = dict(renames or {})
        self._name_columns = name_columns
        self._shapes: dict[str, _Shape] = {}
        self._parsed: dict[str, str] = {}  # uri -> scratch table holding its rows
        self._tables: list[str] = []

    def prepare(self, con: Any, uris: list[str]) -> None:
        import duckdb

        for table in self._tables:
            con.execute(f"drop table if exists {table}")
        self._tables, self._parsed = [], {}
        try:
            shapes = {uri: self._shape_of(page) for uri, page in page_structures(con, uris).items()}
        except duckdb.Error:
            return  # an unreadable page among them: select_sql reads each alone and names it
        self._shapes.update(shapes)
        groups: dict[_Shape, list[str]] = {}
        for uri, shape in shapes.items():
            if shape.fields:
                groups.setdefault(shape, []).append(uri)
        for number, (shape, members) in enumerate(groups.items()):
            table = f"lakebox_pages_{number}"
            try:
                con.execute(f"create or replace temp table {table} as {self._select(members, shape, filename=True)}")
            except duckdb.Error:
                continue  # read one by one, so the bad page is named alone
            self._tables.append(table)
            self._parsed.update((uri, table) for uri in members)

    def select_sql(self, con: Any, uri: str) -> str:
        if uri in self._parsed:
            return f"select * exclude ({FILE_COLUMN}) from {self._parsed.pop(uri)} where {FILE_COLUMN} = {literal(uri)}"
        shape = self._shapes.pop(uri) if uri in self._shapes else self._shape_of(page_structure(con, uri))
        if not shape.fields:
            what = "an empty records array" if shape.empty else "no array of records"
            return f"select error({literal(f'the page has {what} at {self.records}')})"
        return self._select([uri], shape)

    def _select(self, uris: list[str], shape: _Shape, filename: bool = False) -> str:
        fields = ", ".join(f"{quote(name)} {kind}" for name, kind in shape.fields)
        file_column = f", {FILE_COLUMN}" if filename else ""
        if not self._path:
            source = read_json_sql(uris, {_WHOLE: f"STRUCT({fields})"}, array=True, records=False, filename=filename)
            rows = f"select unnest({_WHOLE}, recursive := true){file_column} from {source}"
        else:
            # each field on the way down a STRUCT of the next one (and its siblings as JSON); the last a list
            declared = f"STRUCT({fields})[]"
            for part, others in zip(reversed(self._path[1:]), reversed(shape.others[1:]), strict=True):
                declared = "STRUCT(" + ", ".join([f"{quote(part)} {declared}",
                                                  *(f"{quote(name)} JSON" for name in others)]) + ")"
            top = {self._path[0]: declared, **{name: "JSON" for name in shape.others[0]}}
            listed = quote(self._path[0])
            for part in self._path[1:]:
                listed = f"struct_extract({listed}, {literal(part)})"
            source = read_json_sql(uris, top, filename=filename)
            rows = f"select unnest({listed}, recursive := true){file_column} from {source}"
        names = self._columns([name for name, _ in shape.fields])
        if all(name == column for name, column in names.items()):
            return rows
        columns = ", ".join(f"{quote(name)} as {quote(column)}" for name, column in names.items())
        return f"select {columns}{file_column} from ({rows})"

    def _columns(self, names: list[str]) -> dict[str, str]:
        """field -> column for one shape's record fields."""
        named = dict(self._name_columns(names)) if self._name_columns else {}
        return {name: self._renames.get(name) or named.get(name, name) for name in names}

    def _shape_of(self, page: Any) -> _Shape:
        """The records' fields typed for read_json, and the fields beside the records' path
        at each level of it (the page's own first)."""
        others: list[tuple[str, ...]] = []
        level = page
        for part in self._path:
            others.append(tuple(k for k in level if k != part) if isinstance(level, dict) else ())
            level = level.get(part) if isinstance(level, dict) else None
        records = records_structure(page, self._path)
        if not isinstance(records, dict):
            return _Shape((), tuple(others), records == EMPTY)
        return _Shape(tuple((name, _duckdb_type(kind)) for name, kind in records.items()), tuple(others))


class _Shape(NamedTuple):
    fields: tuple[tuple[str, str], ...]  # (name, DuckDB type) of the records' fields
    others: tuple[tuple[str, ...], ...]  # per field of the records path, the fields beside it
    empty: bool = False  # the records list is empty


def _duckdb_type(kind: object) -> str:
    """A field that is null on every record of the page reads as text; nested values as JSON."""
    if isinstance(kind, str) and kind not in ("NULL", "JSON"):
        return kind
    return "VARCHAR" if kind == "NULL" else "JSON"
