"""Reads landed GHO OData pages as flat rows: the records under `$.value`, one column per field.

A page is `{"@odata.context": ..., ["@odata.count": N,] "value": [{...}, ...],
["@odata.nextLink": ...]}` and its records are flat objects, so the rows are the `value`
array unnested. As in the orders reader, each page is typed as it says itself (DuckDB's
json_structure), so a renamed, missing or retyped field shows up as drift, and pages of
the same shape are parsed together in one query. A page of another shape is read on its
own so that it is named alone; an unreadable page fails in `select_sql`, which the loader
reports as a parse failure of that batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lakebox.warehouse.sql import literal, quote

_FILE = "lakebox_source_file"


class ODataPageReader:
    """A `BatchReader` (see `lakebox.ingest.batches`) for pages whose records sit at
    `records_path`; `renames` maps a record's field names to column names (others keep theirs)."""

    def __init__(self, records_path: str = "$.value", renames: Mapping[str, str] | None = None) -> None:
        self._path = records_path
        self._renames = dict(renames or {})
        self._shapes: dict[str, str | None] = {}
        self._parsed: dict[str, str] = {}  # uri -> scratch table holding its rows
        self._tables: list[str] = []

    def prepare(self, con: Any, uris: list[str]) -> None:
        import duckdb

        for table in self._tables:
            con.execute(f"drop table if exists {table}")
        self._tables, self._parsed = [], {}
        try:
            shapes = dict(con.execute(f"select filename, {self._shape()} from read_text({_listed(uris)})").fetchall())
        except duckdb.Error:
            return  # an unreadable page among them: select_sql reads each alone and names it
        self._shapes.update(shapes)
        groups: dict[str, list[str]] = {}
        for uri, structure in shapes.items():
            if _record_fields(structure):
                groups.setdefault(structure, []).append(uri)
        for number, (structure, members) in enumerate(groups.items()):
            table = f"lakebox_odata_pages_{number}"
            try:
                con.execute(f"create or replace temp table {table} as {self._rows(members, structure, True)}")
            except duckdb.Error:
                continue
            self._tables.append(table)
            self._parsed.update((uri, table) for uri in members)

    def select_sql(self, con: Any, uri: str) -> str:
        if uri in self._parsed:
            return f"select * exclude ({_FILE}) from {self._parsed.pop(uri)} where {_FILE} = {literal(uri)}"
        structure = self._shapes.pop(uri) if uri in self._shapes else \
            con.execute(f"select {self._shape()} from read_text({literal(uri)})").fetchall()[0][0]
        if not _record_fields(structure):
            what = "an empty records array" if structure == '["NULL"]' else "no array of records"
            return f"select error({literal(f'the page has {what} at {self._path}')})"
        return self._rows([uri], structure, False)

    def _shape(self) -> str:
        return f"json_structure(json_extract(content, {literal(self._path)}))"

    def _rows(self, uris: list[str], structure: str | None, with_file: bool) -> str:
        fields = {name: _duckdb_type(kind) for name, kind in _record_fields(structure).items()}
        shape = literal(orjson.dumps([fields]).decode())
        columns = ", ".join(f"{quote(name)} as {quote(self._renames.get(name, name))}" for name in fields)
        file = f"{_FILE}, " if with_file else ""
        return (f"select {file}{columns} from (select filename as {_FILE}, unnest(json_transform("
                f"json_extract(content, {literal(self._path)}), {shape}), recursive := true) "
                f"from read_text({_listed(uris)}))")


def _listed(uris: list[str]) -> str:
    return "[" + ", ".join(literal(u) for u in uris) + "]"


def _record_fields(structure: str | None) -> dict[str, Any]:
    """The merged fields of a page's records; {} when they are not a list of objects."""
    shape = orjson.loads(structure) if structure else None
    if isinstance(shape, list) and shape and isinstance(shape[0], dict):
        return shape[0]
    return {}


def _duckdb_type(kind: object) -> str:
    """A field that is null on every record of the page reads as text; nested values as JSON."""
    if isinstance(kind, str) and kind not in ("NULL", "JSON"):
        return kind
    return "VARCHAR" if kind == "NULL" else "JSON"
