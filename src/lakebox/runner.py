"""Runs a pipeline's stages in order, in-process, with an audit row for the run and each stage.

A pipeline is an ordered list of stages; a stage is a plain function of a `RunContext`.
A scheduler adapter can wrap the same stages; no business logic lives here.
Quarantined input does not stop the stage that found it (good batches keep flowing) but
stops the pipeline before the next stage, so marts are never rebuilt from a failed gate.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakebox.errors import LakeboxError, QualityGateFailed
from lakebox.lake import Lake
from lakebox.log import Logger, get_logger, log_context
from lakebox.settings import Settings, redact
from lakebox.warehouse import Warehouse
from lakebox.warehouse import ops


@dataclass
class StageResult:
    rows_in: int = 0
    rows_out: int = 0


@dataclass(frozen=True)
class Stage:
    name: str
    fn: Callable[[RunContext], StageResult | None]


@dataclass(frozen=True)
class Pipeline:
    name: str
    stages: tuple[Stage, ...]
    description: str = ""
    # A cheap fingerprint of the input waiting for the pipeline (e.g. its landing folder's
    # listing), for `lakebox watch` to run it when that changes; None: run it on a schedule.
    waiting_input: Callable[[Settings], object] | None = None


@dataclass
class RunContext:
    settings: Settings
    lake: Lake
    warehouse: Warehouse
    run_id: str
    pipeline: str
    log: Logger = field(default_factory=get_logger)
    quarantined: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def quarantine_failure(self, message: str) -> None:
        """Note a batch or file that failed its gate; the run ends failed after this stage."""
        self.quarantined.append(message)


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

    with exclusive(settings.home, f"run-{pipeline.name}", f"pipeline {pipeline.name}"):
        return _run(pipeline, settings, lake, warehouse, options)


def _run(
    pipeline: Pipeline, settings: Settings, lake: Lake, warehouse: Warehouse, options: dict[str, Any] | None
) -> RunOutcome:
    run_id = new_run_id(pipeline.name)
    ctx = RunContext(settings=settings, lake=lake, warehouse=warehouse, run_id=run_id, pipeline=pipeline.name,
                     extras=dict(options or {}))
    log = ctx.log
    started = ops.utcnow()
    t0 = time.perf_counter()
    rows_in = rows_out = 0
    stages: list[tuple[str, str, float, int, int]] = []
    error: str | None = None
    with log_context(run_id=run_id, pipeline=pipeline.name):
        ops.start_run(warehouse, run_id, pipeline.name)
        log.info("run started", warehouse=warehouse.describe(), lake=redact(lake.url))
        for stage in pipeline.stages:
            with log_context(stage=stage.name):
                s_started, s0 = ops.utcnow(), time.perf_counter()
                log.info("stage started")
                result = StageResult()
                try:
                    result = stage.fn(ctx) or StageResult()
                    if ctx.quarantined:
                        raise QualityGateFailed(_gate_message(pipeline.name, ctx.quarantined, lake))
                except Exception as exc:  # recorded, logged, and reported as the run's error
                    error = redact(str(exc) if isinstance(exc, LakeboxError) else f"{type(exc).__name__}: {exc}")
                    ops.record_stage(
                        warehouse, run_id, pipeline.name, stage.name, "failed", s_started,
                        result.rows_in, result.rows_out, error,
                    )
                    stages.append((stage.name, "failed", time.perf_counter() - s0, result.rows_in, result.rows_out))
                    rows_out = result.rows_out  # e.g. what a gated load still loaded
                    log.error("stage failed", error=error, exc_info=not isinstance(exc, LakeboxError))
                    break
                ops.record_stage(
                    warehouse, run_id, pipeline.name, stage.name, "success", s_started,
                    result.rows_in, result.rows_out, None,
                )
                stages.append((stage.name, "success", time.perf_counter() - s0, result.rows_in, result.rows_out))
                rows_in = rows_in or result.rows_in  # what entered the pipeline
                rows_out = result.rows_out  # what the last stage made (marts, after snapshot)
                log.info("stage finished", seconds=round(time.perf_counter() - s0, 3),
                         rows_in=result.rows_in, rows_out=result.rows_out)
        status = "failed" if error else "success"
        ops.end_run(warehouse, run_id, status, started, rows_in, rows_out, error)
        duration = time.perf_counter() - t0
        log.info("run finished", status=status, seconds=round(duration, 3))
    return RunOutcome(run_id, pipeline.name, status, duration, rows_in, rows_out, error, stages)


def _gate_message(pipeline: str, failures: list[str], lake: Lake) -> str:
    head = f"{pipeline}: {len(failures)} input item(s) failed the quality gate and were quarantined; marts were not rebuilt"
    where = (f"  the originals, each with an errors.json beside it, are in {redact(lake.url)}/quarantine/; "
             "fix the source and send the data again (the raw lake keeps every version)")
    return "\n".join([head, *(f"  - {f}" for f in failures), where])
