"""Reads landed JSON API pages as rows, wherever in the page the records sit.

A records path says where: `$.records` or `$.value` (a field of the page holding a list
of objects) or `$` (the page is the list). Only these two forms are accepted, so the same
path drives both the REST source (which counts a page's records) and this reader.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from lakebox.errors import ConfigError
from lakebox.warehouse.sql import literal, quote

MAX_PAGE_BYTES = 64 << 20  # DuckDB buffers twice this; a 10k-record page is ~2 MB
_PATH = re.compile(r"\$(?:\.(?P<field>[A-Za-z_][A-Za-z0-9_]*))?")
_FILE = "lakebox_source_file"
_WHOLE = "lakebox_record"  # the column a bare-array page's records are read into


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


class PageReader:
    """Reads API pages as rows, typed as each page itself says, so drift shows up as drift.

    DuckDB's schema inference over one large JSON object is slow (~1.2 s per 100k records)
    and reads one file on one thread. So `prepare` takes several pages at once: one
    json_structure pass gives each page's fields (~0.2 s per 100k), then pages of the same
    shape are parsed together with their fields declared (DuckDB spreads files over its
    threads), and `select_sql` picks one page's rows out of that table. A page of another
    shape, or one that cannot be read, is read on its own so it is named alone. Every
    top-level field of a page is declared (the others as JSON): DuckDB reads a page with an
    undeclared field ~15x slower. Nested objects stay JSON columns.
    """

    def __init__(self, records: str = "$.records") -> None:
        self.records = records
        self._field = records_field(records)
        self._shapes: dict[str, _Shape] = {}
        self._parsed: dict[str, str] = {}  # uri -> scratch table holding its rows
        self._tables: list[str] = []

    def prepare(self, con: Any, uris: list[str]) -> None:
        import duckdb

        for table in self._tables:
            con.execute(f"drop table if exists {table}")
        self._tables, self._parsed = [], {}
        try:
            shapes = self._shapes_in_parallel(con, uris)
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
            return f"select * exclude ({_FILE}) from {self._parsed.pop(uri)} where {_FILE} = {literal(uri)}"
        if uri in self._shapes:
            shape = self._shapes.pop(uri)
        else:
            shape = self._shape_of(con.execute(f"select {_STRUCTURE} from read_text({literal(uri)})").fetchall()[0][0])
        if not shape.fields:  # empty or odd: let DuckDB's own reading say what is wrong
            if self._field is None:
                return f"select * from read_json({literal(uri)}, format = 'array', maximum_object_size = {MAX_PAGE_BYTES})"
            return (f"select unnest({quote(self._field)}, recursive := true) from read_json({literal(uri)}, "
                    f"format = 'auto', maximum_object_size = {MAX_PAGE_BYTES})")
        return self._select([uri], shape)

    def _select(self, uris: list[str], shape: _Shape, filename: bool = False) -> str:
        fields = ", ".join(f"{quote(name)} {kind}" for name, kind in shape.fields)
        listed = ", ".join(literal(u) for u in uris)
        extra = f", filename = {literal(_FILE)}" if filename else ""
        file_column = f", {_FILE}" if filename else ""
        if self._field is None:
            columns = "{" + literal(_WHOLE) + ": " + literal(f"STRUCT({fields})") + "}"
            source = (f"read_json([{listed}], format = 'array', records = false, "
                      f"maximum_object_size = {MAX_PAGE_BYTES}, columns = {columns}{extra})")
            return f"select unnest({_WHOLE}, recursive := true){file_column} from {source}"
        declared = [f"{literal(self._field)}: {literal(f'STRUCT({fields})[]')}",
                    *(f"{literal(name)}: 'JSON'" for name in shape.others)]
        source = (f"read_json([{listed}], maximum_object_size = {MAX_PAGE_BYTES}, "
                  f"columns = {{{', '.join(declared)}}}{extra})")
        return f"select unnest({quote(self._field)}, recursive := true){file_column} from {source}"

    def _shapes_in_parallel(self, con: Any, uris: list[str]) -> dict[str, _Shape]:
        """The shape of each page; DuckDB reads text files on one thread per query, so the
        pages are split over one cursor (connection) per core."""
        import os
        from concurrent.futures import ThreadPoolExecutor

        workers = max(1, min(len(uris), os.cpu_count() or 1, 4))

        def shapes(part: list[str]) -> list[tuple[str, str | None]]:
            listed = ", ".join(literal(u) for u in part)
            query = f"select filename, {_STRUCTURE} from read_text([{listed}])"
            rows: list[tuple[str, str | None]] = con.cursor().execute(query).fetchall()
            return rows

        with ThreadPoolExecutor(workers) as pool:
            parts = pool.map(shapes, [uris[i::workers] for i in range(workers)])
            return {uri: self._shape_of(structure) for part in parts for uri, structure in part}

    def _shape_of(self, structure: str | None) -> _Shape:
        """The merged fields of a page's records and its other top-level fields, from
        json_structure; no fields when the records are not a list of objects."""
        import orjson

        whole = orjson.loads(structure) if structure else None
        if self._field is None:
            listed, others = whole, ()
        elif isinstance(whole, dict):
            listed, others = whole.get(self._field), tuple(k for k in whole if k != self._field)
        else:
            return _Shape((), ())
        if isinstance(listed, list) and listed and isinstance(listed[0], dict):
            return _Shape(tuple((name, _duckdb_type(kind)) for name, kind in listed[0].items()), others)
        return _Shape((), others)


_STRUCTURE = "json_structure(content)"


class _Shape(NamedTuple):
    fields: tuple[tuple[str, str], ...]  # (name, DuckDB type) of the records' fields
    others: tuple[str, ...]  # the page's other top-level fields


def _duckdb_type(kind: object) -> str:
    if isinstance(kind, str) and kind not in ("NULL", "JSON"):
        return kind
    return "VARCHAR" if kind == "NULL" else "JSON"
