"""orders: API → raw lake → raw.orders → stg_orders → daily_order_metrics → snapshot."""

from __future__ import annotations

from typing import Any

from lakebox.ingest.batches import load_pending_batches
from lakebox.lake.snapshots import snapshot_stage
from lakebox.runner import Pipeline, RunContext, Stage, StageResult
from lakebox.transform import transform_stage
from lakebox.warehouse.sql import literal, quote

MARTS = ("analytics.daily_order_metrics",)
MAX_PAGE_BYTES = 64 << 20  # DuckDB buffers twice this; a 10k-record page is ~2 MB


class PageReader:
    """Reads API pages as rows, typed as each page itself says, so drift shows up as drift.

    DuckDB's schema inference over one large JSON object is slow (~1.2 s per 100k records)
    and reads one file on one thread. So `prepare` takes several pages at once: one
    json_structure pass gives each page's fields (~0.2 s per 100k), then pages of the same
    shape are parsed together with their fields declared (DuckDB spreads files over its
    threads), and `select_sql` picks one page's rows out of that table. A page of another
    shape, or one that cannot be read, is read on its own so it is named alone.
    """

    def __init__(self) -> None:
        self._shapes: dict[str, str | None] = {}
        self._parsed: dict[str, str] = {}  # uri -> scratch table holding its rows
        self._tables: list[str] = []

    def prepare(self, con: Any, uris: list[str]) -> None:
        import duckdb

        for table in self._tables:
            con.execute(f"drop table if exists {table}")
        self._tables, self._parsed = [], {}
        try:
            shapes = _shapes_in_parallel(con, uris)
        except duckdb.Error:
            return  # an unreadable page among them: select_sql reads each alone and names it
        self._shapes.update(shapes)
        groups: dict[str, list[str]] = {}
        for uri, structure in shapes.items():
            if _record_fields(structure):
                groups.setdefault(structure, []).append(uri)
        for number, (structure, members) in enumerate(groups.items()):
            table = f"lakebox_pages_{number}"
            try:
                con.execute(
                    f"create or replace temp table {table} as select unnest(records, recursive := true), "
                    f"{_FILE} from {_read_json(members, structure, filename=True)}"
                )
            except duckdb.Error:
                continue  # read one by one, so the bad page is named alone
            self._tables.append(table)
            self._parsed.update((uri, table) for uri in members)

    def select_sql(self, con: Any, uri: str) -> str:
        if uri in self._parsed:
            return f"select * exclude ({_FILE}) from {self._parsed.pop(uri)} where {_FILE} = {literal(uri)}"
        if uri in self._shapes:
            structure = self._shapes.pop(uri)
        else:
            structure = con.execute(f"select {_SHAPE} from read_text({literal(uri)})").fetchall()[0][0]
        if not _record_fields(structure):  # empty or odd: let DuckDB's own reading say what is wrong
            return (f"select unnest(records, recursive := true) from read_json({literal(uri)}, "
                    f"format = 'auto', maximum_object_size = {MAX_PAGE_BYTES})")
        return f"select unnest(records, recursive := true) from {_read_json([uri], structure)}"


_SHAPE = "json_structure(json_extract(content, '$.records'))"
_FILE = "lakebox_source_file"


def _shapes_in_parallel(con: Any, uris: list[str]) -> dict[str, str | None]:
    """json_structure of each page; DuckDB reads text files on one thread per query, so the
    pages are split over one cursor (connection) per core."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(len(uris), os.cpu_count() or 1, 4))

    def shapes(part: list[str]) -> list[tuple[str, str | None]]:
        listed = ", ".join(literal(u) for u in part)
        return con.cursor().execute(f"select filename, {_SHAPE} from read_text([{listed}])").fetchall()

    with ThreadPoolExecutor(workers) as pool:
        return dict(row for part in pool.map(shapes, [uris[i::workers] for i in range(workers)]) for row in part)


def _record_fields(structure: str | None) -> dict[str, Any]:
    """The merged fields of a page's records, from json_structure; {} when not a list of objects."""
    import orjson

    shape = orjson.loads(structure) if structure else None
    if isinstance(shape, list) and shape and isinstance(shape[0], dict):
        return shape[0]
    return {}


def _read_json(uris: list[str], structure: str | None, filename: bool = False) -> str:
    fields = ", ".join(f"{quote(name)} {_duckdb_type(kind)}" for name, kind in _record_fields(structure).items())
    columns = "{'records': " + literal(f"STRUCT({fields})[]") + ", 'next_cursor': 'VARCHAR'}"
    listed = ", ".join(literal(u) for u in uris)
    extra = f", filename = {literal(_FILE)}" if filename else ""
    return f"read_json([{listed}], maximum_object_size = {MAX_PAGE_BYTES}, columns = {columns}{extra})"


def _duckdb_type(kind: object) -> str:
    if isinstance(kind, str) and kind not in ("NULL", "JSON"):
        return kind
    return "VARCHAR" if kind == "NULL" else "JSON"


def fetch(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.orders.source import fetch_orders

    return fetch_orders(ctx)


def load(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.orders.contract import CONTRACT

    return load_pending_batches(
        ctx, CONTRACT, PageReader(),
        hint="fix the source (or the contract in lakebox/pipelines/orders/contract.py if the change is "
        "intended); the original response is kept in quarantine/ and raw/",
    )


PIPELINE = Pipeline(
    name="orders",
    description="synthetic orders API: daily order metrics, quality gate, snapshots",
    stages=(
        Stage("fetch", fetch),
        Stage("load", load),
        transform_stage("path:models/orders", ["orders"], MARTS),
        snapshot_stage(MARTS),
    ),
)
