"""Runs a pipeline's stages in order, in-process, with an audit row for the run and each stage.

A pipeline is an ordered list of stages; a stage is a plain function of a `RunContext`.
A scheduler adapter can wrap the same stages; no business logic lives here.
Quarantined input does not stop the run: good input keeps flowing into the marts, and the
run ends `partial` while any quarantined item of the pipeline is open (ops.quarantine),
naming each. A gate that stops its source (policy `fail-fast`, or a whole source that
drifted) fails the run before the next stage, so marts are never built past it.
SIGTERM or SIGINT stops the run where it is: the stage's open transaction rolls back, the
stage and the run are recorded as failed ("interrupted by SIGTERM") and RunInterrupted goes
on to the caller (see lakebox.interrupts).
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakebox import run_view
from lakebox.errors import LakeboxError, QualityGateFailed
from lakebox.interrupts import SignalGuard, stop_on_signals
from lakebox.lake import Lake
from lakebox.log import log_context
from lakebox.observability.anomalies import note_row_counts
from lakebox.observability.lineage import NoLineage, RunLineage, run_started
from lakebox.settings import Settings, redact
from lakebox.stage import RunContext, Stage, StageResult
from lakebox.warehouse import Warehouse, ops
from lakebox.warehouse.ops.quarantine import QuarantineItem
from lakebox.warehouse.ops.quarantine import items as open_items

__all__ = ["Pipeline", "RunContext", "RunOutcome", "Stage", "StageResult", "run_pipeline"]

SUCCESS, PARTIAL, FAILED = "success", "partial", "failed"


@dataclass(frozen=True)
class Pipeline:
    name: str
    stages: tuple[Stage, ...]
    description: str = ""
    # A cheap fingerprint of the input waiting for the pipeline (e.g. its landing folder's
    # listing), for `lakebox watch` to run it when that changes; None: run it on a schedule.
    waiting_input: Callable[[Settings], object] | None = None


@dataclass
class RunOutcome:
    run_id: str
    pipeline: str
    status: str
    duration_s: float
    rows_in: int
    rows_out: int
    error: str | None
    stages: list[tuple[str, str, float, int, int]]
    # Every open quarantined item of the pipeline when the run ended (those this run
    # opened have opened_run_id == run_id); a `partial` run names them.
    quarantined: list[QuarantineItem] = field(default_factory=list)


def new_run_id(pipeline: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{pipeline}-{stamp}-{uuid.uuid4().hex[:6]}"


def run_pipeline(
    pipeline: Pipeline, settings: Settings, lake: Lake, warehouse: Warehouse, options: dict[str, Any] | None = None
) -> RunOutcome:
    """Run every stage; record the run and its stages; never raise for pipeline failures.
    Raises BusyError, before recording anything, when the pipeline is already running in
    another process on this home.

    `options` reach the stages as `ctx.extras` (e.g. full_refresh)."""
    from lakebox.locks import exclusive

    run_id = new_run_id(pipeline.name)
    with exclusive(settings.home, f"run-{pipeline.name}", f"pipeline {pipeline.name}", note=run_id):
        return _run(run_id, pipeline, settings, lake, warehouse, options)


def _run(
    run_id: str, pipeline: Pipeline, settings: Settings, lake: Lake, warehouse: Warehouse,
    options: dict[str, Any] | None,
) -> RunOutcome:
    ctx = RunContext(settings=settings, lake=lake, warehouse=warehouse, run_id=run_id, pipeline=pipeline.name,
                     extras=dict(options or {}))
    log = ctx.log
    started = ops.utcnow()
    t0 = time.perf_counter()
    rows_in = rows_out = 0
    stages: list[tuple[str, str, float, int, int]] = []
    error: str | None = None
    with log_context(run_id=run_id, pipeline=pipeline.name), stop_on_signals() as guard:
        current: tuple[str, dt.datetime] | None = None  # the stage under way, not yet recorded
        ended = False
        lineage: RunLineage | NoLineage = NoLineage()
        try:
            ops.start_run(warehouse, run_id, pipeline.name)
            lineage = run_started(ctx)  # OpenLineage events (lakebox.observability.lineage)
            log.info("run started", warehouse=warehouse.describe(), lake=redact(lake.url))
            for stage in pipeline.stages:
                with log_context(stage=stage.name):
                    s_started, s0 = ops.utcnow(), time.perf_counter()
                    current = (stage.name, s_started)
                    log.info("stage started")
                    run_view.stage_started(pipeline.name, stage.name)
                    result = StageResult()
                    try:
                        result = stage.fn(ctx) or StageResult()
                        if ctx.gate_stops:
                            raise QualityGateFailed(_gate_message(pipeline.name, ctx, lake))
                    except Exception as exc:  # recorded, logged, and reported as the run's error
                        if guard.received is not None:  # a library's own error for the signal (DuckDB's)
                            raise
                        error = redact(str(exc) if isinstance(exc, LakeboxError) else f"{type(exc).__name__}: {exc}")
                        ops.record_stage(
                            warehouse, run_id, pipeline.name, stage.name, "failed", s_started,
                            result.rows_in, result.rows_out, error,
                        )
                        lineage.stage_ended(stage.name, "failed", s_started, error)
                        current = None
                        stages.append((stage.name, "failed", time.perf_counter() - s0, result.rows_in, result.rows_out))
                        run_view.stage_finished(pipeline.name, *stages[-1])
                        rows_out = result.rows_out  # e.g. what a gated load still loaded
                        if isinstance(exc, LakeboxError):
                            log.error("stage failed", error=error)
                        else:  # unexpected: keep the whole traceback
                            log.error("stage failed", error=error, exc_info=True,
                                      traceback=redact(traceback.format_exc()))
                        break
                    ops.record_stage(
                        warehouse, run_id, pipeline.name, stage.name, "success", s_started,
                        result.rows_in, result.rows_out, None,
                    )
                    lineage.stage_ended(stage.name, "success", s_started, None)
                    current = None
                    stages.append((stage.name, "success", time.perf_counter() - s0, result.rows_in, result.rows_out))
                    run_view.stage_finished(pipeline.name, *stages[-1])
                    rows_in = rows_in or result.rows_in  # what entered the pipeline
                    rows_out = result.rows_out  # what the last stage made (marts, after snapshot)
                    log.info("stage finished", seconds=round(time.perf_counter() - s0, 3),
                             rows_in=result.rows_in, rows_out=result.rows_out)
            waiting = open_items(warehouse, pipeline=pipeline.name)
            status = FAILED if error else PARTIAL if waiting else SUCCESS
            if status == PARTIAL:
                error = _partial_message(pipeline.name, waiting, run_id, lake)
                log.warning("run partial: quarantined input is open", open_items=[i.id for i in waiting])
            ops.end_run(warehouse, run_id, status, started, rows_in, rows_out, error)
            ended = True
            note_row_counts(ctx)  # ops.table_stats, anomalies (lakebox.observability.anomalies)
            lineage.run_ended(status, error)
        except BaseException as exc:  # a signal, or the audit trail itself failing
            if not ended:
                _close_stopped(warehouse, run_id, pipeline.name, current, started, rows_in, rows_out,
                               _stop_reason(exc, guard))
                lineage.stopped(current, _stop_reason(exc, guard))
            if guard.received is not None and ended:
                raise guard.interrupted(f"{pipeline.name}: {guard.interrupted()} after run {run_id} ended "
                                        f"{status}") from exc
            if guard.received is not None:
                where = f" during stage {current[0]}" if current else ""
                raise guard.interrupted(
                    f"{pipeline.name}: {guard.interrupted()}{where}; run {run_id} was recorded as failed and its "
                    "open transaction rolled back (nothing half loaded): run it again to finish") from exc
            raise
        duration = time.perf_counter() - t0
        log.info("run finished", status=status, seconds=round(duration, 3))
    return RunOutcome(run_id, pipeline.name, status, duration, rows_in, rows_out, error, stages, waiting)


def _stop_reason(exc: BaseException, guard: SignalGuard) -> str:
    if guard.received is not None:
        return str(guard.interrupted())
    if isinstance(exc, Exception):
        return redact(str(exc) if isinstance(exc, LakeboxError) else f"{type(exc).__name__}: {exc}")
    return f"interrupted: {type(exc).__name__}"  # a caller's own stop (Ctrl-C off the main thread, Dagster's)


def _close_stopped(
    warehouse: Warehouse, run_id: str, pipeline: str, current: tuple[str, dt.datetime] | None,
    started: dt.datetime, rows_in: int, rows_out: int, why: str,
) -> None:
    """Record the stage under way and the run as failed, so neither stays `running`. Any
    open transaction has already rolled back as the exception unwound; if the warehouse
    itself is what failed, the next run closes the row instead."""
    from lakebox.log import get_logger

    log = get_logger()
    log.error("run stopped", stage=current[0] if current else None, error=why)
    try:
        if current is not None:
            ops.record_stage(warehouse, run_id, pipeline, current[0], "failed", current[1], 0, 0, why)
        ops.end_run(warehouse, run_id, FAILED, started, rows_in, rows_out, why)
    except Exception as exc:  # noqa: BLE001 - the original error is what matters; this one is logged
        log.error("could not record the stopped run", error=redact(f"{type(exc).__name__}: {exc}"))


def _gate_message(pipeline: str, ctx: RunContext, lake: Lake) -> str:
    head = f"{pipeline}: the quality gate stopped the run; marts were not rebuilt"
    quarantined = [f"{i.id}: source {i.source}, {i.item}, batch {i.batch_id}: {_rules_line(i.rules)}; kept at "
                   f"{i.quarantine_path}" for i in ctx.quarantined]
    where = (f"  the originals, each with an errors.json beside it, are in {redact(lake.url)}/quarantine/ "
             "(`lakebox quarantine list`); fix the source and send the data again")
    return "\n".join([head, *(f"  - {m}" for m in ctx.gate_stops), *(f"  - quarantined {q}" for q in quarantined),
                      where])


def _partial_message(pipeline: str, waiting: list[QuarantineItem], run_id: str, lake: Lake) -> str:
    new = sum(1 for i in waiting if i.opened_run_id == run_id)
    head = (f"{pipeline}: {len(waiting)} quarantined item(s) open ({new} new in this run); good input was "
            "loaded and the marts were built without them")
    listed = [f"  - {i.id}: source {i.source}, {i.item}, batch {i.batch_id}: {_rules_line(i.rules)}; "
              f"kept at {i.quarantine_path}" for i in waiting]
    hint = (f"  the originals, each with an errors.json beside it, are in {redact(lake.url)}/quarantine/; send a "
            "corrected version (same file name, or the same request) or `lakebox quarantine dismiss ID --reason ...`")
    return "\n".join([head, *listed, hint])


def _rules_line(rules: str) -> str:
    import orjson

    try:
        found = orjson.loads(rules)
    except orjson.JSONDecodeError:
        return rules
    return "; ".join(
        f"rule {r.get('rule')}" + (f" column {r['column']}" if r.get("column") else "")
        + (f", {r['failing_rows']} row(s)" if r.get("failing_rows") else "") + f": {r.get('detail', '')}"
        for r in found if isinstance(r, dict)
    )
