"""What a stage read and wrote, found in the audit it left (ops.batches, ops.dq_results) and
in dbt's compiled SQL, so no stage has to report its own lineage.

Names are stable across runs: warehouse tables `<schema>.<table>` in the warehouse's
namespace, lake objects by their lake path in the lake's namespace, a source by its landing
folder (file drops) or `lakebox-source://<pipeline>/<source>` (API pages).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lakebox.observability.lineage.events import dataset
from lakebox.observability.lineage.sql_cache import SqlCache, Unparsable, cache_file

if TYPE_CHECKING:
    from lakebox.stage import RunContext

SCHEMA_OF_FOLDER = {"staging": "staging", "marts": "analytics", "ml": "ml"}


@dataclass
class StageLineage:
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    models: list[DbtModel] = field(default_factory=list)


@dataclass(frozen=True)
class DbtModel:
    name: str  # schema.table
    sql: str
    reads: tuple[str, ...]  # schema.table of each relation the SQL selects from


def warehouse_namespace(ctx: RunContext) -> str:
    from lakebox.warehouse import kind_of

    return kind_of(ctx.settings).namespace(ctx.settings.warehouse)


def lake_namespace(ctx: RunContext) -> str:
    from lakebox.settings import redact

    url = redact(ctx.lake.url)
    return url if "://" in url else "file://" + str(Path(url).resolve())


def stage_lineage(ctx: RunContext, started: dt.datetime, ended: dt.datetime) -> StageLineage:
    """Datasets the stage touched between `started` and `ended`."""
    found = StageLineage()
    wh_ns, lake_ns = warehouse_namespace(ctx), lake_namespace(ctx)
    landed = ctx.warehouse.query(
        "select batch_id, source, lake_path, rows, meta from ops.batches where run_id = ? and landed_at >= ? "
        "and landed_at <= ? order by landed_at, batch_id", [ctx.run_id, started, ended])
    for _, source, lake_path, rows, meta in landed:
        found.inputs.append(dataset(*_origin(ctx, source, meta)))
        found.outputs.append(dataset(lake_ns, lake_path, rows=rows))
    loaded = ctx.warehouse.query(
        "select batch_id, source, lake_path, rows, status from ops.batches where loaded_at >= ? and loaded_at <= ? "
        "order by loaded_at, batch_id", [started, ended])
    if loaded:
        checks = _assertions(ctx, [b for b, *_ in loaded])
        for batch_id, _, lake_path, _, _ in loaded:
            found.inputs.append(dataset(lake_ns, lake_path, assertions=checks.get(batch_id, ())))
        raw_rows = rows_loaded(ctx, sorted({source for _, source, *_ in loaded}), started, ended)
        columns = table_columns(ctx, list(raw_rows))
        found.outputs += [dataset(wh_ns, t, fields=columns.get(t, ()), rows=n) for t, n in raw_rows.items()]
    cache = SqlCache(cache_file(ctx.settings))
    found.models = compiled_models(ctx, started, cache)
    if found.models:
        reads = sorted({r for m in found.models for r in m.reads} - {m.name for m in found.models})
        columns = table_columns(ctx, [*reads, *(m.name for m in found.models)])
        counts = row_counts(ctx, [m.name for m in found.models])
        found.inputs += [dataset(wh_ns, r) for r in reads]
        found.outputs += [dataset(wh_ns, m.name, fields=columns.get(m.name, ()), rows=counts.get(m.name),
                                  column_lineage=column_facet(ctx, cache, m, columns, wh_ns))
                          for m in found.models]
    cache.save()
    return found


def column_facet(ctx: RunContext, cache: SqlCache, model: DbtModel, columns: dict[str, list[tuple[str, str]]],
                 namespace: str) -> dict[str, Any] | None:
    """The columnLineage facet of a model: each output column's input columns, and the
    columns that filter, group or join every row."""
    try:
        found = cache.columns(model.sql, {t: columns.get(t, []) for t in model.reads})
    except Unparsable:
        return None

    def field(table: str, column: str, kind: str, subtype: str) -> dict[str, Any]:
        return {"namespace": namespace, "name": table, "field": column,
                "transformations": [{"type": kind, "subtype": subtype, "masking": False}]}

    return {"fields": {out: {"inputFields": [field(t, c, "DIRECT", k) for t, c, k in ins]}
                       for out, ins in found["fields"].items() if ins},
            "dataset": [field(t, c, "INDIRECT", k) for t, c, k in found["dataset"]]}


def raw_tables(ctx: RunContext, sources: Sequence[str]) -> list[str]:
    """The raw tables of `sources`: `raw.<source>`, or `raw.<source>_<resource>` (one per file kind)."""
    from lakebox.observability.lineage.columns import warehouse_columns

    if not ctx.warehouse.has_information_schema:  # Spark: the raw tables named for the sources
        candidates = [f"raw.{row[1]}" for row in ctx.warehouse.query("show tables in raw")]
        names = sorted(t.split(".", 1)[1] for t, cols in warehouse_columns(ctx.warehouse, candidates).items()
                       if any(c == "batch_id" for c, _ in cols))
    else:
        names = [t for (t,) in ctx.warehouse.query(
            "select distinct table_name from information_schema.columns where table_schema = 'raw' "
            "and column_name = 'batch_id' order by table_name")]
    return [f"raw.{t}" for t in names if any(t == s or t.startswith(f"{s}_") for s in sources)]


def rows_loaded(ctx: RunContext, sources: Sequence[str], started: dt.datetime, ended: dt.datetime) -> dict[str, int]:
    """Rows each raw table of `sources` took from the batches loaded between `started` and `ended`."""
    tables = raw_tables(ctx, sources)
    if not tables:
        return {}
    # the batch ids first: on Spark the ops tables live apart from the warehouse's, so one
    # query cannot join them
    loaded = [b for (b,) in ctx.warehouse.query(
        "select batch_id from ops.batches where loaded_at >= ? and loaded_at <= ? and status = 'loaded'",
        [started, ended])]
    if not loaded:
        return {}
    marks = ", ".join("?" * len(loaded))
    union = " union all ".join(f"select '{t}', count(*) from {t} where batch_id in ({marks})" for t in tables)
    return {t: int(n) for t, n in ctx.warehouse.query(union, [b for _ in tables for b in loaded]) if n}


def _origin(ctx: RunContext, source: str, meta: str | None) -> tuple[str, str]:
    """Where a batch came from: the landing folder and file, or the source's API."""
    found = orjson.loads(meta or "{}")
    name = found.get("file") or found.get("name") or found.get("path")
    if isinstance(name, str):
        from lakebox.settings import redact

        landing = redact(str(ctx.settings.landing))
        landing = landing if "://" in landing else "file://" + str(Path(landing).resolve())
        return f"{landing.rstrip('/')}/{ctx.pipeline}", Path(name).name
    return f"lakebox-source://{ctx.pipeline}", source


def _assertions(ctx: RunContext, batch_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for start in range(0, len(batch_ids), 500):
        chunk = list(batch_ids[start:start + 500])
        marks = ", ".join("?" * len(chunk))
        rows = ctx.warehouse.query(
            f"select batch_id, check_name, column_name, passed from ops.dq_results where batch_id in ({marks}) "
            "and run_id = ? order by batch_id, check_name, column_name", [*chunk, ctx.run_id])
        for batch_id, check, column, passed in rows:
            found[batch_id].append({"assertion": check, "success": bool(passed), "severity": "error",
                                    **({"column": column} if column else {})})
    return found


def table_columns(ctx: RunContext, tables: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """(column, type) of each `schema.table`, in one query (Spark: one empty select each)."""
    from lakebox.observability.lineage.columns import warehouse_columns

    return warehouse_columns(ctx.warehouse, tables)


def row_counts(ctx: RunContext, tables: Sequence[str]) -> dict[str, int]:
    if not tables:
        return {}
    union = " union all ".join(f"select '{t}', count(*) from {t}" for t in tables)
    try:
        return {t: int(n) for t, n in ctx.warehouse.query(union)}
    except Exception:  # noqa: BLE001 - a view over a dropped table: lineage still goes out, without counts
        return {}


def compiled_models(ctx: RunContext, since: dt.datetime | None, cache: SqlCache) -> list[DbtModel]:
    """dbt models the stage built: those dbt compiled since it started (target/compiled/);
    every compiled model when `since` is None."""
    root = ctx.settings.home / "dbt" / "target" / "compiled" / "lakebox" / "models"
    return compiled_in(root, since, cache, ctx.log)


def compiled_in(root: Path, since: dt.datetime | None, cache: SqlCache, log: Any) -> list[DbtModel]:
    if not root.is_dir():
        return []
    cutoff = since.replace(tzinfo=dt.UTC).timestamp() if since is not None else 0.0
    models = []
    for path in sorted(root.glob("*/*/*.sql")):
        folder = path.parent.name
        if folder not in SCHEMA_OF_FOLDER or path.stat().st_mtime < cutoff:
            continue
        sql, name = path.read_text(), f"{SCHEMA_OF_FOLDER[folder]}.{path.stem}"
        try:
            reads = tuple(cache.tables(sql))
        except Unparsable:
            log.warning(f"lineage: sqlglot cannot parse model {name}; it gets no table or column lineage",
                        model=name, compiled=str(path))
            reads = ()
        models.append(DbtModel(name, sql, reads))
    return in_build_order(models)


def in_build_order(models: list[DbtModel]) -> list[DbtModel]:
    """Each model after the models it reads, as dbt built them."""
    left = {m.name: m for m in models}
    ordered: list[DbtModel] = []
    while left:
        ready = [m for m in left.values() if not (set(m.reads) & (left.keys() - {m.name}))] or list(left.values())
        for m in sorted(ready, key=lambda m: m.name):
            ordered.append(m)
            del left[m.name]
    return ordered
