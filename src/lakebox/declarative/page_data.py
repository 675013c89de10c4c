"""The queries behind a declarative pipeline's page (`page.py`): what its folder declares
(marts under models/marts, resources, models in pipeline.toml) and what the warehouse and
the MLflow registry hold of it. Nothing here writes: a mart not built yet, a model not
registered yet or an MLflow store not created yet reads as absent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from lakebox.dashboard.data import (
    CACHE_SECONDS,
    WarehouseRef,
    dq_summary,
    fetch,
    has_rows,
    open_quarantine,
    reader,
    runs_page,
)
from lakebox.declarative.config import ModelConfig, PipelineConfig, load_config
from lakebox.errors import ConfigError
from lakebox.settings import Settings

MARTS_SCHEMA = "analytics"
ROWS_SHOWN = 200  # a mart's newest rows in its table
TREND_POINTS = 5000  # a chart draws at most this many points (the newest)
SERIES_MAX = 12  # a text column with at most this many values splits a mart's chart into lines
RUNS_SHOWN = 20
PREDICTIONS_SHOWN = 50


@dataclass(frozen=True)
class DeclaredPipeline:
    """What a declarative pipeline's spec and pipeline.toml say its page shows."""

    name: str
    title: str
    description: str
    marts: tuple[str, ...]  # analytics.<model> for each of its models/marts/*.sql
    sources: tuple[str, ...]  # its ledger sources, <pipeline>_<resource>
    models: tuple[ModelConfig, ...] = field(default=())


def declared(name: str) -> DeclaredPipeline:
    """The pipeline `name` as its spec (lakebox.declarative.spec) and pipeline.toml declare it;
    a ConfigError names what is wrong."""
    from lakebox.pipelines import get_spec

    spec = get_spec(name)
    config = spec.declared if isinstance(spec.declared, PipelineConfig) else load_config(Path(spec.folder))
    title = spec.dashboard_page.title if spec.dashboard_page else name
    return DeclaredPipeline(name, title, config.description,
                            tuple(m for m in spec.marts if m.startswith(f"{MARTS_SCHEMA}.")),
                            tuple(config.ledger_source(r) for r in config.source.resources), config.models)


# ------------------------------------------------------------------ marts
@dataclass(frozen=True)
class TableShape:
    """A table's columns by kind, as the page shows them."""

    columns: tuple[str, ...]
    dates: tuple[str, ...]  # date columns (shown as days)
    timestamps: tuple[str, ...]
    numbers: tuple[str, ...]
    texts: tuple[str, ...]

    @property
    def time(self) -> str | None:
        """The column its chart runs along: the first date or timestamp column."""
        return next((c for c in self.columns if c in self.dates or c in self.timestamps), None)


_NUMBER_TYPES = ("integer", "bigint", "smallint", "tinyint", "hugeint", "ubigint", "uinteger", "usmallint",
                 "utinyint", "double", "real", "float", "decimal", "numeric")


def built_marts(wh: WarehouseRef, marts: tuple[str, ...]) -> list[str]:
    """The declared marts that exist in the warehouse, in the order given."""
    if not marts:
        return []
    names = [m.split(".", 1)[1] for m in marts]
    found = fetch(wh, "select table_name from information_schema.tables where table_schema = ? and table_name in "
                  f"({', '.join('?' for _ in names)})", (MARTS_SCHEMA, *names))
    present = set(found["table_name"])
    return [m for m, n in zip(marts, names, strict=True) if n in present]


def table_shape(wh: WarehouseRef, table_name: str) -> TableShape:
    schema, table = table_name.split(".", 1)
    found = fetch(wh, "select column_name, data_type from information_schema.columns where table_schema = ? and "
                  "table_name = ? order by ordinal_position", (schema, table))
    kinds = dict(zip(found["column_name"], (str(t).lower() for t in found["data_type"]), strict=True))
    return TableShape(
        columns=tuple(kinds),
        dates=tuple(c for c, t in kinds.items() if t == "date"),
        timestamps=tuple(c for c, t in kinds.items() if t.startswith("timestamp")),
        numbers=tuple(c for c, t in kinds.items() if t.startswith(_NUMBER_TYPES)),
        texts=tuple(c for c, t in kinds.items() if t in ("varchar", "text", "character varying")
                    or t.startswith(("varchar", "character varying"))),
    )


def mart_count(wh: WarehouseRef, mart: str) -> int:
    return int(fetch(wh, f"select count(*) as n from {mart}")["n"].iloc[0])


def mart_rows(wh: WarehouseRef, mart: str, shape: TableShape, limit: int = ROWS_SHOWN) -> pd.DataFrame:
    """The mart's newest rows (by its time column, when it has one), decimals as floats."""
    order = f" order by {shape.time} desc" if shape.time else ""
    return fetch(wh, f"select * from {mart}{order} limit ?", (limit,))


def series_column(wh: WarehouseRef, mart: str, shape: TableShape) -> str | None:
    """The first text column holding 2 to SERIES_MAX values: the chart draws a line for each."""
    if not shape.texts:
        return None
    counts = fetch(wh, "select " + ", ".join(f"count(distinct {c}) as {c}" for c in shape.texts) + f" from {mart}")
    return next((c for c in shape.texts if 2 <= int(counts[c].iloc[0]) <= SERIES_MAX), None)


def mart_trend(wh: WarehouseRef, mart: str, time: str, measure: str, series: str | None = None,
               limit: int = TREND_POINTS) -> pd.DataFrame:
    """`measure` along `time` (its mean where several rows share a time), a line per `series`
    value; the newest `limit` points, oldest first."""
    by = f"{time}, {series}" if series else time
    return fetch(
        wh,
        f"select * from (select {by}, cast(avg({measure}) as double precision) as {measure} from {mart} "
        f"where {time} is not null group by {by} order by {time} desc limit ?) as newest order by {by}",
        (limit,),
    )


# ------------------------------------------------------------------ runs, checks, quarantine
def pipeline_runs(wh: WarehouseRef, name: str, limit: int = RUNS_SHOWN) -> pd.DataFrame:
    """Its newest runs; empty before the first."""
    if not has_rows(wh, "ops.pipeline_runs"):
        return pd.DataFrame(columns=["run_id", "pipeline", "status", "started_at", "duration_s", "rows_in",
                                     "rows_out", "error"])
    return runs_page(wh, (name,), per_page=limit)


def quality_checks(wh: WarehouseRef, name: str, sources: tuple[str, ...]) -> pd.DataFrame:
    """Per check of its sources: how often it ran and failed, failing ones first; `resource`
    is the source's resource (`air_quality_readings` -> `readings`)."""
    if not has_rows(wh, "ops.dq_results"):
        return pd.DataFrame(columns=["source", "resource", "check_name", "column_name", "checks", "failed",
                                     "failing_rows", "last_checked"])
    checks = dq_summary(wh)
    checks = checks[checks["source"].isin(sources)]
    checks = checks.assign(resource=checks["source"].str.removeprefix(f"{name}_"))
    return checks.sort_values(["failed", "source", "check_name"], ascending=[False, True, True]).reset_index(drop=True)


def open_items(wh: WarehouseRef, name: str) -> pd.DataFrame:
    """Its open quarantine items, oldest first."""
    items = open_quarantine(wh)
    return items[items["pipeline"] == name].reset_index(drop=True)


# ------------------------------------------------------------------ models
@dataclass(frozen=True)
class Champion:
    """A model's champion as the MLflow registry holds it."""

    version: str  # as lakebox's tables label it (`3`, or `1.g2` after `lakebox ml forget`)
    metrics: dict[str, float]  # its training run's holdout metrics (and the baseline's)
    registered_at: dt.datetime | None


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def champion(wh: WarehouseRef, model: str) -> Champion | None:
    """The model's champion and its metrics; None while it has none (or no MLflow store exists:
    the dashboard creates none)."""
    from lakebox.ml import history, registry, tracking

    settings = Settings.load()
    uri = tracking.tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    client = tracking.connect(settings)
    with tracking.store_errors(settings):
        version = registry.champion_version(client, model)
        if version is None:
            return None
        found = client.get_model_version(model, version)
        metrics = dict(client.get_run(found.run_id).data.metrics) if found.run_id else {}
    with reader(wh) as warehouse:
        generation = history.current_generation(warehouse, model)
    registered = (dt.datetime.fromtimestamp(found.creation_timestamp / 1000, dt.UTC).replace(tzinfo=None)
                  if found.creation_timestamp else None)
    return Champion(history.History(model, generation, None).label(version), metrics, registered)


def latest_predictions(wh: WarehouseRef, model: ModelConfig, limit: int = PREDICTIONS_SHOWN) -> pd.DataFrame | None:
    """The model's newest scored rows; None before the first are written."""
    table = model.predictions_table
    if not has_rows(wh, table):
        return None
    return fetch(wh, f"select * from {table} order by scored_at desc limit ?", (limit,))


def check_page(name: str) -> str:
    """`name` if it is a pipeline this page can render, else a ConfigError saying how to open it."""
    if not name:
        raise ConfigError("this page shows a declarative pipeline: open it at /<pipeline> (its name), "
                          "from the dashboard's menu")
    return name
