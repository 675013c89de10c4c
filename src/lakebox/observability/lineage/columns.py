"""Column lineage across every built dbt model: `lakebox lineage schema.table.column` prints
where a column comes from (down to the raw table) and where it goes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakebox.errors import ConfigError

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

Column = tuple[str, str]  # (schema.table, column)


@dataclass
class ColumnGraph:
    """Edges from input columns to the model columns made of them, with the transformation."""

    upstream: dict[Column, list[tuple[Column, str]]] = field(default_factory=lambda: defaultdict(list))
    downstream: dict[Column, list[tuple[Column, str]]] = field(default_factory=lambda: defaultdict(list))
    indirect: dict[str, list[tuple[Column, str]]] = field(default_factory=lambda: defaultdict(list))
    columns: dict[str, list[str]] = field(default_factory=dict)

    def add(self, source: Column, target: Column, subtype: str) -> None:
        self.upstream[target].append((source, subtype))
        self.downstream[source].append((target, subtype))


SCHEMAS = ("raw", "staging", "analytics", "ml")


def warehouse_columns(wh: Warehouse, tables: Sequence[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """(column, type) of each of `tables` (`schema.table`; every table of the catalog's
    schemas when None), in column order, in one query. Spark has no information_schema:
    there each table's columns are read off an empty select."""
    known: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if not wh.has_information_schema:
        for table in _spark_tables(wh) if tables is None else tables:
            try:
                fields = wh.query_arrow(f"select * from {table} limit 0").schema
            except Exception:  # noqa: BLE001 - a table not built (yet) has no columns to show
                continue
            known[table] = [(f.name, str(f.type)) for f in fields]
        return known
    if tables is None:
        where, params = f"table_schema in ({', '.join('?' * len(SCHEMAS))})", list(SCHEMAS)
    elif not tables:
        return known
    else:
        pairs = [t.split(".", 1) for t in tables]
        where, params = " or ".join("(table_schema = ? and table_name = ?)" for _ in pairs), [v for p in pairs for v in p]
    for schema, table, column, kind in wh.query(
            f"select table_schema, table_name, column_name, data_type from information_schema.columns where {where} "
            "order by table_schema, table_name, ordinal_position", params):
        known[f"{schema}.{table}"].append((column, str(kind)))
    return known


def _spark_tables(wh: Warehouse) -> list[str]:
    found = []
    for schema in SCHEMAS:
        try:
            rows = wh.query(f"show tables in {schema}")
        except Exception:  # noqa: BLE001 - a schema not created yet holds no table
            continue
        found += [f"{schema}.{row[1]}" for row in rows if not (len(row) > 2 and row[2])]  # not a temporary view
    return found


def column_graph(settings: Settings, wh: Warehouse,
                 known: dict[str, list[tuple[str, str]]] | None = None) -> ColumnGraph:
    """From dbt's compiled SQL of every model built in this home, and the warehouse's columns
    (`known`, when the caller read them already)."""
    from lakebox.log import get_logger
    from lakebox.observability.lineage.datasets import compiled_in
    from lakebox.observability.lineage.sql_cache import SqlCache, Unparsable, cache_file

    cache = SqlCache(cache_file(settings))
    models = compiled_in(settings.home / "dbt" / "target" / "compiled" / "lakebox" / "models", None, cache,
                         get_logger())
    known = warehouse_columns(wh) if known is None else known
    graph = ColumnGraph(columns={t: [c for c, _ in cols] for t, cols in known.items()})
    for model in models:
        try:
            found = cache.columns(model.sql, {t: known.get(t, []) for t in model.reads})
        except Unparsable:
            continue
        for out, inputs in found["fields"].items():
            for table, column, subtype in inputs:
                graph.add((table, column), (model.name, out), subtype)
        graph.indirect[model.name] = [((t, c), k) for t, c, k in found["dataset"]]
    cache.save()
    return graph


def parse_column(text: str) -> Column:
    parts = text.split(".")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"lakebox lineage: {text!r} is not a column; name it as schema.table.column, "
                          "e.g. analytics.daily_order_metrics.total_amount")
    return f"{parts[0]}.{parts[1]}", parts[2]


def chain(graph: ColumnGraph, start: Column, up: bool, depth: int = 0) -> Iterator[tuple[int, Column, str]]:
    """(depth, column, transformation) walking upstream or downstream from `start`."""
    edges = graph.upstream if up else graph.downstream
    for column, subtype in sorted(edges.get(start, [])):
        yield depth, column, subtype
        yield from chain(graph, column, up, depth + 1)


def print_column(settings: Settings, text: str) -> None:
    import typer

    from lakebox.warehouse import open_warehouse

    target = parse_column(text)
    with open_warehouse(settings) as wh:
        graph = column_graph(settings, wh)
    if target[1] not in graph.columns.get(target[0], []):
        raise ConfigError(f"lakebox lineage: no column {target[1]!r} in {target[0]} (columns: "
                          f"{', '.join(graph.columns.get(target[0], [])) or 'none: is the table built?'})")
    typer.echo(f"{target[0]}.{target[1]}")
    typer.echo("upstream:")
    for depth, (table, column), subtype in chain(graph, target, up=True):
        typer.echo(f"{'  ' * (depth + 1)}<- {table}.{column}  [{subtype}]")
    for (table, column), subtype in graph.indirect.get(target[0], []):
        typer.echo(f"  (every row) {table}.{column}  [{subtype}]")
    typer.echo("downstream:")
    for depth, (table, column), subtype in chain(graph, target, up=False):
        typer.echo(f"{'  ' * (depth + 1)}-> {table}.{column}  [{subtype}]")
