"""Reads landed JSON API pages as rows, wherever in the page the records sit.

A records path says where: `$.records` or `$.value` (a field of the page holding a list
of objects) or `$` (the page is the list). Only these two forms are accepted, so the same
path drives both the REST source (which counts a page's records) and this reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from lakebox.errors import ConfigError
from lakebox.warehouse.sql import literal, quote

MAX_PAGE_BYTES = 64 << 20  # DuckDB buffers twice this; a 10k-record page is ~2 MB
FILE_COLUMN = "lakebox_source_file"  # the column naming each row's page when pages are parsed together
EMPTY = "EMPTY"  # what `records_structure` says of an empty records list
_PATH = re.compile(r"\$(?:\.(?P<field>[A-Za-z_][A-Za-z0-9_]*))?")
_WHOLE = "lakebox_record"  # the column a bare-array page's records are read into
_STRUCTURE = "json_structure(content)"


def records_field(path: str) -> str | None:
    """The page field holding the records (`$.value` -> "value"), None for a bare array (`$`)."""
    match = _PATH.fullmatch(path)
    if not match:
        raise ConfigError(f"records path {path!r} is not supported; use '$' for a bare JSON array "
                          "or '$.<field>' (e.g. '$.records', '$.value') for a field holding the list")
    return match.group("field")


def records_at(doc: Any, path: str) -> list[Any]:
    """The records of a parsed page; KeyError or TypeError when the page has none where expected."""
    field = records_field(path)
    records = doc if field is None else doc[field]
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


def records_structure(page: Any, field: str | None) -> Any:
    """The records' part of a page's structure: their merged fields (a dict of name -> type)
    when they are a list of objects, EMPTY when the list is empty, else None."""
    listed = page if field is None else page.get(field) if isinstance(page, dict) else None
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
    top-level field of a page is declared (the others as JSON): DuckDB reads a page with an
    undeclared field ~15x slower. Nested objects stay JSON columns. `renames` maps a
    record's field names to column names (the others keep theirs), so a source's own
    spelling (`NumericValue`) reads as the contract's (`numeric_value`).
    """

    def __init__(self, records: str = "$.records", renames: Mapping[str, str] | None = None) -> None:
        self.records = records
        self._field = records_field(records)
        self._renames = dict(renames or {})
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
        if self._field is None:
            source = read_json_sql(uris, {_WHOLE: f"STRUCT({fields})"}, array=True, records=False, filename=filename)
            rows = f"select unnest({_WHOLE}, recursive := true){file_column} from {source}"
        else:
            declared = {self._field: f"STRUCT({fields})[]", **{name: "JSON" for name in shape.others}}
            source = read_json_sql(uris, declared, filename=filename)
            rows = f"select unnest({quote(self._field)}, recursive := true){file_column} from {source}"
        if not self._renames:
            return rows
        columns = ", ".join(f"{quote(name)} as {quote(self._renames.get(name, name))}" for name, _ in shape.fields)
        return f"select {columns}{file_column} from ({rows})"

    def _shape_of(self, page: Any) -> _Shape:
        """The records' fields typed for read_json, and the page's other top-level fields."""
        others = tuple(k for k in page if k != self._field) if self._field and isinstance(page, dict) else ()
        records = records_structure(page, self._field)
        if not isinstance(records, dict):
            return _Shape((), others, records == EMPTY)
        return _Shape(tuple((name, _duckdb_type(kind)) for name, kind in records.items()), others)


class _Shape(NamedTuple):
    fields: tuple[tuple[str, str], ...]  # (name, DuckDB type) of the records' fields
    others: tuple[str, ...]  # the page's other top-level fields
    empty: bool = False  # the records list is empty


def _duckdb_type(kind: object) -> str:
    """A field that is null on every record of the page reads as text; nested values as JSON."""
    if isinstance(kind, str) and kind not in ("NULL", "JSON"):
        return kind
    return "VARCHAR" if kind == "NULL" else "JSON"
