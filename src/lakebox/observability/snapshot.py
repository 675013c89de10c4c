"""What the ops.* and ml.* tables say right now, read in a handful of small queries.

Metrics and alerts both look at the same snapshot, so a scrape costs no SQL while it is
fresh. Every table is optional: a new home has no ml.* tables until a model is trained.
A pipeline is fresh as of its last run that built its marts: `success`, or `partial`
(quarantined input set aside, the good input built).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakebox.warehouse.kinds import kind_of
from lakebox.warehouse.ops import audit, quarantine

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

RUN_STATUSES = ("success", "partial", "failed")


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
        for source, check, passed, count in audit.dq_counts(wh):
            snap.checks[(source, check, bool(passed))] = int(count)
    if ("ops", "quarantine") in tables:
        snap.quarantine_open.update(quarantine.open_counts(wh))
    if ("ml", "model_decisions") in tables:
        _read_decisions(wh, snap)
    if ("ml", "drift_report") in tables:
        _read_drift(wh, snap)
    return snap


def _read_runs(wh: Warehouse, snap: OpsSnapshot) -> None:
    for pipeline, status, count, rows_in, rows_out in audit.run_totals(wh):
        snap.runs[(pipeline, status)] = int(count)
        snap.rows_in[pipeline] = snap.rows_in.get(pipeline, 0) + int(rows_in)
        snap.rows_out[pipeline] = snap.rows_out.get(pipeline, 0) + int(rows_out)
    for pipeline, ended in audit.last_built(wh):
        if ended is not None:
            snap.last_success[pipeline] = _epoch(ended)
    for pipeline, status, duration in audit.last_finished(wh):
        snap.last_status[pipeline] = status
        if duration is not None:
            snap.last_duration[pipeline] = float(duration)


def _read_decisions(wh: Warehouse, snap: OpsSnapshot) -> None:
    """Each model's champion (its latest `champion` decision) and that decision's metric."""
    for model, version, metric, value in wh.query(
            "select d.model_name, d.version, d.metric, d.value from ml.model_decisions d join ("
            " select model_name, max(decided_at) as decided_at from ml.model_decisions"
            " where decision = 'champion' group by model_name) c"
            " on d.model_name = c.model_name and d.decided_at = c.decided_at where d.decision = 'champion'"):
        metrics = {str(metric): float(value)} if value is not None else {}
        snap.promotions[str(model)] = Promotion(str(model), str(version), metrics)
        snap.model_metrics.update({(str(model), name): v for name, v in metrics.items()})


def _read_drift(wh: Warehouse, snap: OpsSnapshot) -> None:
    """Flags of each model's latest drift report, per feature."""
    for model, feature, drifted in wh.query(
            "select r.model_name, r.feature, r.drifted from ml.drift_report r join ("
            " select model_name, max(computed_at) as computed_at from ml.drift_report group by model_name) l"
            " on r.model_name = l.model_name and r.computed_at = l.computed_at"):
        key = (str(model), str(feature))
        snap.drift[key] = snap.drift.get(key, False) or bool(drifted)


def read_settings_snapshot(settings: Settings) -> OpsSnapshot:
    """Open the configured warehouse just long enough to read it (no DDL, nothing created)."""
    wh = kind_of(settings).open_for_metrics(settings)
    if wh is None:
        return OpsSnapshot()
    with wh:
        return read_snapshot(wh)
