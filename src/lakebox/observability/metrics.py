"""Prometheus metrics: what this process saw (durations, HTTP retries) and what the ops.*
and ml.* tables say (runs, freshness, checks, quarantine, models, drift).

Counts of runs come from ops.pipeline_runs, not from a counter in memory: they survive a
restart and include runs made by other processes (a cron `lakebox run` while `watch`
serves /metrics). Durations and HTTP retries are seen only in-process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lakebox.observability.sla import freshness_sla
from lakebox.observability.snapshot import RUN_STATUSES, OpsSnapshot

if TYPE_CHECKING:
    from lakebox.runner import RunOutcome

_RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

PROCESS = CollectorRegistry(auto_describe=True)
_version = [0]  # bumped whenever a process series changes, so /metrics knows to render again


def version() -> int:
    return _version[0]

RUN_SECONDS = Histogram("lakebox_run_duration_seconds", "Wall time of a pipeline run, by final status.",
                        ["pipeline", "status"], buckets=_RUN_BUCKETS, registry=PROCESS)
STAGE_SECONDS = Histogram("lakebox_stage_duration_seconds", "Wall time of one stage of a run.",
                          ["pipeline", "stage", "status"], buckets=_RUN_BUCKETS, registry=PROCESS)


class _SourceCounters(Collector):
    """Per-source counters noted by the HTTP layer; the run's pipeline is kept as a label
    so a Pushgateway group carries only its own pipeline's retries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries: dict[tuple[str, str], float] = {}
        self.waits: dict[tuple[str, str], float] = {}
        self.unshipped = 0.0
        self.alerts: dict[tuple[str, str], float] = {}  # (kind, outcome) -> count

    def add(self, table: dict[tuple[str, str], float], key: tuple[str, str], amount: float) -> None:
        with self._lock:
            table[key] = table.get(key, 0.0) + amount
            _version[0] += 1

    def add_unshipped(self, lines: int) -> None:
        with self._lock:
            self.unshipped += lines
            _version[0] += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            retries, waits, alerts = dict(self.retries), dict(self.waits), dict(self.alerts)
            unshipped = self.unshipped
        family = CounterMetricFamily("lakebox_http_retries", "HTTP requests retried after a transient fault.",
                                     labels=["source", "pipeline"])
        for (source, pipeline), value in sorted(retries.items()):
            family.add_metric([source, pipeline], value)
        yield family
        family = CounterMetricFamily("lakebox_http_rate_limit_wait_seconds",
                                     "Seconds spent waiting because a source asked us to (429, Retry-After, reset).",
                                     labels=["source", "pipeline"])
        for (source, pipeline), value in sorted(waits.items()):
            family.add_metric([source, pipeline], value)
        yield family
        yield CounterMetricFamily("lakebox_log_lines_unshipped", "Log lines that could not be pushed to Loki.",
                                  value=unshipped)
        family = CounterMetricFamily("lakebox_alerts", "Alert webhook deliveries.", labels=["kind", "outcome"])
        for (kind, outcome), value in sorted(alerts.items()):
            family.add_metric([kind, outcome], value)
        yield family


COUNTERS = _SourceCounters()
PROCESS.register(COUNTERS)


def observe_run(outcome: RunOutcome) -> None:
    RUN_SECONDS.labels(outcome.pipeline, outcome.status).observe(outcome.duration_s)
    for stage, status, seconds, _rows_in, _rows_out in outcome.stages:
        STAGE_SECONDS.labels(outcome.pipeline, stage, status).observe(seconds)
    _version[0] += 1


class OpsCollector(Collector):
    """Series read from an ops snapshot; they change only when the snapshot does."""

    def __init__(self, snapshot: Callable[[], OpsSnapshot], env: Mapping[str, str]) -> None:
        self._snapshot, self._env = snapshot, env

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        pipelines = snap.pipelines()
        runs = CounterMetricFamily("lakebox_pipeline_runs", "Finished runs by pipeline and status (ops.pipeline_runs).",
                                   labels=["pipeline", "status"])
        last = GaugeMetricFamily("lakebox_pipeline_last_run_status",
                                 "1 for the status of each pipeline's latest finished run, 0 for the others.",
                                 labels=["pipeline", "status"])
        for pipeline in pipelines:
            statuses = sorted(set(RUN_STATUSES) | {s for p, s in snap.runs if p == pipeline})
            for status in statuses:
                runs.add_metric([pipeline, status], snap.runs.get((pipeline, status), 0))
                last.add_metric([pipeline, status], 1.0 if snap.last_status.get(pipeline) == status else 0.0)
        yield runs
        yield last
        yield _gauge("lakebox_pipeline_last_run_duration_seconds", "Duration of each pipeline's latest finished run.",
                     "pipeline", snap.last_duration)
        yield _counter("lakebox_pipeline_rows_in", "Rows that entered each pipeline, summed over its runs.",
                       "pipeline", snap.rows_in)
        yield _counter("lakebox_pipeline_rows_out", "Rows each pipeline's last stage produced, summed over its runs.",
                       "pipeline", snap.rows_out)
        yield _gauge("lakebox_pipeline_last_success_timestamp_seconds", "When each pipeline last succeeded (unix s).",
                     "pipeline", snap.last_success)
        yield _gauge("lakebox_pipeline_freshness_sla_seconds",
                     "How stale each pipeline may get (LAKEBOX_<PIPELINE>_SLA or LAKEBOX_FRESHNESS_SLA).",
                     "pipeline", {p: freshness_sla(self._env, p) for p in pipelines})
        checks = CounterMetricFamily("lakebox_quality_checks", "Quality checks run on input batches (ops.dq_results).",
                                     labels=["source", "check", "result"])
        failed = CounterMetricFamily("lakebox_quality_checks_failed", "Quality checks that failed (ops.dq_results).",
                                     labels=["source", "check"])
        for (source, check, passed), count in sorted(snap.checks.items()):
            checks.add_metric([source, check, "passed" if passed else "failed"], count)
        for source, check in sorted({(s, c) for s, c, _ in snap.checks}):
            failed.add_metric([source, check], snap.checks.get((source, check, False), 0))
        yield checks
        yield failed
        yield _gauge("lakebox_quarantine_open_items", "Quarantined input items still open, by source.",
                     "source", snap.quarantine_open)
        metric = GaugeMetricFamily("lakebox_model_metric", "The champion's evaluation metrics (ml.model_decisions).",
                                   labels=["model", "metric"])
        for (model, name), value in sorted(snap.model_metrics.items()):
            metric.add_metric([model, name], value)
        yield metric
        champion = GaugeMetricFamily("lakebox_model_champion_info", "The champion version of each model (always 1).",
                                     labels=["model", "version"])
        for model, promotion in sorted(snap.promotions.items()):
            champion.add_metric([model, promotion.version], 1.0)
        yield champion
        drift = GaugeMetricFamily("lakebox_model_drift_flagged",
                                  "1 when the latest drift report flags a feature (ml.drift_report).",
                                  labels=["model", "feature"])
        for (model, feature), flagged in sorted(snap.drift.items()):
            drift.add_metric([model, feature], 1.0 if flagged else 0.0)
        yield drift


class ClockCollector(Collector):
    """Series that move with the clock: rendered at every scrape (a few lines)."""

    def __init__(self, snapshot: Callable[[], OpsSnapshot], health: Callable[[], tuple[float, int]] | None) -> None:
        self._snapshot, self._health = snapshot, health

    def collect(self) -> Iterator[Metric]:
        snap, now = self._snapshot(), time.time()
        yield _gauge("lakebox_pipeline_freshness_seconds", "Seconds since each pipeline's last successful run.",
                     "pipeline", {p: max(0.0, now - t) for p, t in snap.last_success.items()})
        if self._health is not None:
            age, errors = self._health()
            yield GaugeMetricFamily("lakebox_ops_snapshot_age_seconds",
                                    "Seconds since the ops tables were last read.", value=max(0.0, now - age))
            yield CounterMetricFamily("lakebox_ops_read_errors", "Failed reads of the ops tables.", value=errors)


def _gauge(name: str, doc: str, label: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _counter(name: str, doc: str, label: str, values: Mapping[str, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class _OnlyPipeline(Collector):
    """The process's series that belong to one pipeline (pipeline label equal, or absent)."""

    def __init__(self, pipeline: str) -> None:
        self._pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        for family in PROCESS.collect():
            family.samples = [s for s in family.samples if s.labels.get("pipeline", self._pipeline) == self._pipeline]
            if family.samples:
                yield family


def registry_for(snapshot: Callable[[], OpsSnapshot], env: Mapping[str, str],
                 pipeline: str | None = None, clock: bool = True) -> CollectorRegistry:
    """What one Pushgateway group holds (`pipeline`), or what /metrics serves: everything,
    or (clock=False) all but the clock-driven series."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector(snapshot, env))
    registry.register(_OnlyPipeline(pipeline) if pipeline else PROCESS)
    if clock:
        registry.register(ClockCollector(snapshot, None))
    return registry
