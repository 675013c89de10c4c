"""`lakebox watch`: one long-lived process that runs pipelines as their input arrives.

A one-shot `lakebox run` pays Python's and dbt's start-up (import, project parse: seconds)
every time. The watcher pays it once, at start, so a new drop reaches the marts in about
the time the work itself takes. File-fed pipelines (a spec's `waiting_input`, e.g. retail's
landing folder) run when their input changed and then stayed still for one poll, so a file
still being written is not read half-way (writing to a dot-file and renaming it in place is
safest). Pipelines that poll a source (no `waiting_input`, e.g. orders) run every `every`
seconds. The warehouse is opened per run and closed in between,
so the dashboard and other readers are not locked out while the watcher waits. A failed run
is recorded and logged like any other, and the watcher goes on; the same failing input is
not retried until it changes.

The watched pipelines' models are looked at after each run of their pipeline and every
`every` seconds besides: a due retraining trigger (lakebox.ml.triggers: a schedule, drift
flagged, live quality below its threshold) retrains the model there and then.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakebox.errors import BusyError, LakeboxError
from lakebox.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from lakebox.ml.spec import MLModelSpec
    from lakebox.runner import Pipeline, RunOutcome
    from lakebox.settings import Settings


# Libraries the stages import on first use (pandas alone ~0.3 s: pyarrow imports it to
# convert Python lists), loaded at start so that the first drop does not pay for them.
PRELOAD = ("pandas", "pyarrow", "pyarrow.compute", "pyarrow.csv", "pyarrow.parquet", "httpx")


@dataclass
class _Watched:
    pipeline: Pipeline
    ran_on: object = None  # input fingerprint at the last run (None: never ran)
    last_poll: object = None  # fingerprint at the previous poll
    next_due: float = 0.0  # monotonic time of the next scheduled run (no fingerprint)

    def due(self, settings: Settings, now: float, every: float) -> bool:
        if self.pipeline.waiting_input is None:
            if now < self.next_due:
                return False
            self.next_due = now + every
            return True
        seen = self.pipeline.waiting_input(settings)
        still, self.last_poll = seen == self.last_poll, seen
        if not still or (self.ran_on is not None and seen == self.ran_on):
            return False
        self.ran_on = seen
        return True


def watch(
    settings: Settings,
    pipelines: Sequence[Pipeline],
    every: float = 60.0,
    poll: float = 0.5,
    max_runs: int | None = None,
    stop: threading.Event | None = None,
    on_run: Callable[[RunOutcome], None] | None = None,
    models: Sequence[MLModelSpec] | None = None,
) -> int:
    """Run `pipelines` whenever they are due until `stop` is set (or `max_runs` runs); the
    number of runs made. dbt is imported and the project parsed once, before the first run.
    `models` (default: the watched pipelines' own) are retrained when a trigger is due.
    One watcher per home: a second raises BusyError."""
    from lakebox.locks import exclusive

    chosen = list(models) if models is not None else models_of([p.name for p in pipelines])
    with exclusive(settings.home, "watch", "lakebox watch"):
        return _watch(settings, pipelines, every, poll, max_runs, stop or threading.Event(), on_run, chosen)


def models_of(pipelines: Sequence[str]) -> list[MLModelSpec]:
    """The models of `pipelines`: those their specs declare and those registered at run time."""
    from lakebox.ml.specs import registered_pipelines, specs_for
    from lakebox.pipelines import discover

    found = discover()
    models: list[MLModelSpec] = []
    for name in pipelines:
        spec = found.get(name)
        declared = [spec.resolve(ref) for ref in spec.ml_models] if spec else []
        if declared or name in registered_pipelines():
            models += specs_for(name, declared)
    return models


def _look_at_models(settings: Settings, models: Sequence[MLModelSpec]) -> None:
    """Retrain each model whose trigger is due; a model that cannot be looked at is logged, not fatal."""
    from lakebox.ml.triggers import check, retrain
    from lakebox.warehouse import open_warehouse

    log = get_logger()
    for spec in models:
        try:
            with open_warehouse(settings) as warehouse:
                found = check(settings, warehouse, spec)
                if found is not None:
                    retrain(settings, warehouse, spec, found)
        except LakeboxError as exc:  # busy, a store unusable: look again next time
            log.warning("retraining triggers not checked", model=spec.name, error=str(exc))


def _watch(
    settings: Settings,
    pipelines: Sequence[Pipeline],
    every: float,
    poll: float,
    max_runs: int | None,
    stop: threading.Event,
    on_run: Callable[[RunOutcome], None] | None,
    models: Sequence[MLModelSpec] = (),
) -> int:
    import importlib

    from lakebox.lake import Lake
    from lakebox.runner import run_pipeline
    from lakebox.transform.dbt import parse_project
    from lakebox.warehouse import open_warehouse

    log = get_logger()
    lake = Lake.from_settings(settings)
    for module in PRELOAD:
        importlib.import_module(module)
    seconds = parse_project(settings)
    watched = [_Watched(p) for p in pipelines]
    log.info("watching", pipelines=[p.name for p in pipelines], every=every, poll=poll,
             dbt_ready_seconds=round(seconds, 2))
    runs = 0
    models_due = time.monotonic()  # the models' triggers, looked at every `every` seconds and after runs
    while not stop.is_set():
        if models and time.monotonic() >= models_due:
            _look_at_models(settings, models)
            models_due = time.monotonic() + every
        for item in watched:
            if stop.is_set() or not item.due(settings, time.monotonic(), every):
                continue
            try:
                with open_warehouse(settings) as warehouse:
                    outcome = run_pipeline(item.pipeline, settings, lake, warehouse)
            except LakeboxError as exc:  # busy, or the warehouse is locked: try again next time
                (log.warning if isinstance(exc, BusyError) else log.error)(
                    "watch run could not start", pipeline=item.pipeline.name, error=str(exc))
                item.ran_on, item.next_due = None, time.monotonic() + every
                continue
            runs += 1
            log.info("watch run finished", pipeline=outcome.pipeline, run_id=outcome.run_id, status=outcome.status,
                     seconds=round(outcome.duration_s, 3), rows_out=outcome.rows_out, error=outcome.error)
            if on_run is not None:
                on_run(outcome)
            mine = [m for m in models if m.pipeline == outcome.pipeline]
            if mine:  # new labels or drift may have landed with the run
                _look_at_models(settings, mine)
            if max_runs is not None and runs >= max_runs:
                return runs
        stop.wait(poll)
    return runs
