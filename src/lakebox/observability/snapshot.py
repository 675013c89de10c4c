"""What the ops.* and ml.* tables say right now, read in a handful of small queries.

Metrics and alerts both look at the same snapshot, so a scrape costs no SQL while it is
fresh. Every table is optional (a new home has no ml.* tables; ops.quarantine arrives
with the gate), and the ML tables are read by the meaning of their columns rather than an
exact schema, so a column added later does not break a scrape.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

RUN_STATUSES = ("success", "partial", "failed")
_PROMOTED_WORDS = {"promote", "promoted", "champion", "accept", "accepted"}
_MODEL_COLS = ("model_name", "model", "registered_model")
_VERSION_COLS = ("model_version", "version", "champion_version", "candidate_version")
_TIME_COLS = ("decided_at", "computed_at", "checked_at", "created_at", "evaluated_at", "scored_at", "run_at", "ts")
_FEATURE_COLS = ("feature", "feature_name", "column_name", "column")
_FLAG_COLS = ("drifted", "drift_flag", "is_drift", "flagged", "drift")
_NUMERIC = ("int", "double", "float", "real", "numeric", "decimal")


@dataclass(frozen=True)
class Promotion:
    model: str
    version: str
    metrics: dict[str, float]


@dataclass
class OpsSnapshot:
    taken_at: float = field(default_factory=time.time)
    runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (pipeline, status) -> runs
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_out: dict[str, int] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)  # pipeline -> unix seconds
    last_status: dict[str, str] = field(default_factory=dict)  # latest finished run's status
    last_duration: dict[str, float] = field(default_factory=dict)
    checks: dict[tuple[str, str, bool], int] = field(default_factory=dict)  # (source, check, passed) -> count
    quarantine_open: dict[str, int] = field(default_factory=dict)  # source -> open items
    model_metrics: dict[tuple[str, str], float] = field(default_factory=dict)  # (model, metric) -> value
    promotions: dict[str, Promotion] = field(default_factory=dict)  # model -> latest promotion
    drift: dict[tuple[str, str], bool] = field(default_factory=dict)  # (model, feature) -> flagged

    def pipelines(self) -> list[str]:
        return sorted({p for p, _ in self.runs} | set(self.last_status))

    def only(self, pipeline: str) -> OpsSnapshot:
        """This snapshot narrowed to one pipeline's series (for a Pushgateway group)."""
        return OpsSnapshot(
            taken_at=self.taken_at,
            runs={k: v for k, v in self.runs.items() if k[0] == pipeline},
            rows_in={k: v for k, v in self.rows_in.items() if k == pipeline},
            rows_out={k: v for k, v in self.rows_out.items() if k == pipeline},
            last_success={k: v for k, v in self.last_success.items() if k == pipeline},
            last_status={k: v for k, v in self.last_status.items() if k == pipeline},
            last_duration={k: v for k, v in self.last_duration.items() if k == pipeline},
        )


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return float(value)


def read_snapshot(wh: Warehouse) -> OpsSnapshot:
    """Read every table that exists; a missing one leaves its part empty."""
    snap = OpsSnapshot()
    tables = {(s, t) for s, t in wh.query(
        "select table_schema, table_name from information_schema.tables where table_schema in ('ops', 'ml')")}
    if ("ops", "pipeline_runs") in tables:
        _read_runs(wh, snap)
    if ("ops", "dq_results") in tables:
        for source, check, passed, count in wh.query(
                "select source, check_name, passed, count(*) from ops.dq_results group by 1, 2, 3"):
            snap.checks[(source, check, bool(passed))] = int(count)
    if ("ops", "quarantine") in tables:
        _read_quarantine(wh, snap)
    elif ("ops", "batches") in tables:  # before ops.quarantine: quarantined batches in the ledger
        for source, count in wh.query(
                "select source, count(*) from ops.batches where status = 'quarantined' group by 1"):
            snap.quarantine_open[source] = int(count)
    if ("ml", "model_decisions") in tables:
        _read_decisions(wh, snap)
    if ("ml", "drift_report") in tables:
        _read_drift(wh, snap)
    return snap


def _read_runs(wh: Warehouse, snap: OpsSnapshot) -> None:
    for pipeline, status, count, rows_in, rows_out in wh.query(
            "select pipeline, status, count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_out), 0) "
            "from ops.pipeline_runs where status <> 'running' group by 1, 2"):
        snap.runs[(pipeline, status)] = int(count)
        snap.rows_in[pipeline] = snap.rows_in.get(pipeline, 0) + int(rows_in)
        snap.rows_out[pipeline] = snap.rows_out.get(pipeline, 0) + int(rows_out)
    for pipeline, ended in wh.query(
            "select pipeline, max(ended_at) from ops.pipeline_runs where status = 'success' group by 1"):
        if ended is not None:
            snap.last_success[pipeline] = _epoch(ended)
    for pipeline, status, duration in wh.query(
            "select r.pipeline, r.status, r.duration_s from ops.pipeline_runs r join ("
            " select pipeline, max(started_at) as started_at from ops.pipeline_runs"
            " where status <> 'running' group by pipeline) l"
            " on r.pipeline = l.pipeline and r.started_at = l.started_at where r.status <> 'running'"):
        snap.last_status[pipeline] = status
        if duration is not None:
            snap.last_duration[pipeline] = float(duration)


def _columns(wh: Warehouse, schema: str, table: str) -> dict[str, str]:
    return {name.lower(): kind.lower() for name, kind in wh.query(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table])}


def _pick(columns: dict[str, str], names: Sequence[str]) -> str | None:
    return next((n for n in names if n in columns), None)


def _read_quarantine(wh: Warehouse, snap: OpsSnapshot) -> None:
    cols = _columns(wh, "ops", "quarantine")
    if "status" in cols:
        where = "status = 'open'"
    elif "resolved_at" in cols:
        where = "resolved_at is null"
    else:
        where = "true"
    group = _pick(cols, ("source", "pipeline"))
    key = group or "'all'"
    for source, count in wh.query(f"select {key}, count(*) from ops.quarantine where {where} group by 1"):
        snap.quarantine_open[str(source)] = int(count)


def _rows(wh: Warehouse, schema: str, table: str, cols: dict[str, str], time_col: str | None) -> list[dict[str, Any]]:
    order = f" order by {time_col} desc" if time_col else ""
    names = list(cols)
    return [dict(zip(names, row, strict=True)) for row in wh.query(
        f"select {', '.join(names)} from {schema}.{table}{order} limit 5000")]


def _metrics_of(row: dict[str, Any], cols: dict[str, str], skip: set[str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, kind in cols.items():
        value = row.get(name)
        if name in skip or value is None or isinstance(value, bool):
            continue
        if any(word in kind for word in _NUMERIC) and "interval" not in kind:
            metrics[name] = float(value)
        elif name in ("metrics", "metrics_json") and isinstance(value, str):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                metrics.update({str(k): float(v) for k, v in parsed.items()
                                if isinstance(v, int | float) and not isinstance(v, bool)})
    return metrics


def _read_decisions(wh: Warehouse, snap: OpsSnapshot) -> None:
    """The champion's metrics per model: the latest promoting decision (or the latest row)."""
    cols = _columns(wh, "ml", "model_decisions")
    model_col, version_col = _pick(cols, _MODEL_COLS), _pick(cols, _VERSION_COLS)
    if model_col is None:
        return
    skip = {c for c in cols if "version" in c or c.endswith("_id") or c.endswith("_at")}
    latest: dict[str, dict[str, Any]] = {}
    for row in _rows(wh, "ml", "model_decisions", cols, _pick(cols, _TIME_COLS)):
        model = str(row[model_col])
        if _promoted(row):
            snap.promotions.setdefault(model, Promotion(
                model, str(row.get(version_col) if version_col else ""), _metrics_of(row, cols, skip)))
        latest.setdefault(model, row)
    for model, row in latest.items():
        promotion = snap.promotions.get(model)
        metrics = promotion.metrics if promotion else _metrics_of(row, cols, skip)
        for metric, value in metrics.items():
            snap.model_metrics[(model, metric)] = value


def _promoted(row: dict[str, Any]) -> bool:
    if isinstance(row.get("promoted"), bool):
        return bool(row["promoted"])
    for name in ("decision", "action", "outcome", "alias"):
        value = row.get(name)
        if isinstance(value, str) and value.strip().lower() in _PROMOTED_WORDS:
            return True
    return False


def _read_drift(wh: Warehouse, snap: OpsSnapshot) -> None:
    """Flags of each model's latest drift report."""
    cols = _columns(wh, "ml", "drift_report")
    model_col, feature_col, time_col = _pick(cols, _MODEL_COLS), _pick(cols, _FEATURE_COLS), _pick(cols, _TIME_COLS)
    flag_col = _pick(cols, _FLAG_COLS) or next((c for c, k in cols.items() if k.startswith("bool")), None)
    if flag_col is None:
        return
    newest: dict[str, Any] = {}
    for row in _rows(wh, "ml", "drift_report", cols, time_col):
        model = str(row[model_col]) if model_col else "model"
        stamp = row.get(time_col) if time_col else None
        if newest.setdefault(model, stamp) != stamp:
            continue  # an older report of this model
        feature = str(row[feature_col]) if feature_col else ""
        key = (model, feature)
        snap.drift[key] = snap.drift.get(key, False) or bool(row[flag_col])


def read_settings_snapshot(settings: Settings) -> OpsSnapshot:
    """Open the configured warehouse just long enough to read it (no DDL, nothing created)."""
    if settings.warehouse_kind == "postgres":
        from lakebox.warehouse.postgres import PostgresWarehouse

        wh: Warehouse = PostgresWarehouse(settings.warehouse, env=settings.env)
    else:
        from pathlib import Path

        from lakebox.warehouse.duckdb import DuckDBWarehouse

        path = settings.warehouse.removeprefix("duckdb://").removeprefix("file://")
        if not Path(path).exists():
            return OpsSnapshot()
        wh = DuckDBWarehouse(path)
    with wh:
        return read_snapshot(wh)
