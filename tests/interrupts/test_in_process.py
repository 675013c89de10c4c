"""SIGTERM and SIGINT inside a run, in-process: the stage's transaction rolls back, the stage
and the run are recorded as failed, RunInterrupted goes on with 128 + the signal's number.
(test_sigterm.py beside it stops real `lakebox run` processes in each stage.)"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakebox.interrupts import RunInterrupted
from lakebox.lake import Lake
from lakebox.locks import exclusive, process_gone
from lakebox.runner import Pipeline, RunContext, Stage, StageResult, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse


@pytest.fixture(autouse=True)
def python_default_handlers() -> Iterator[None]:
    """Signals as a fresh `lakebox run` has them, whatever an earlier test left (Dagster's)."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


@pytest.fixture
def parts(tmp_path: Path):
    settings = Settings.load(env={"LAKEBOX_HOME": str(tmp_path)}, cwd=tmp_path)
    with open_warehouse(settings) as wh:
        wh.execute("create table raw.t (id integer)")
        yield settings, Lake(settings.lake), wh


def _half_loaded(signum: int) -> Callable[[RunContext], None]:
    """A stage stopped inside its load transaction, one row already written."""

    def stage(ctx: RunContext) -> None:
        with ctx.warehouse.transaction():
            ctx.warehouse.execute("insert into raw.t values (1)")
            os.kill(os.getpid(), signum)  # the handler runs here, in this thread
            ctx.warehouse.execute("insert into raw.t values (2)")

    return stage


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_rolls_back_the_stage_and_records_the_run_failed(parts, signum: int, code: int) -> None:
    settings, lake, wh = parts
    later: list[str] = []
    name = signal.Signals(signum).name
    pipeline = Pipeline("p", (Stage("fetch", lambda c: StageResult(3, 3)), Stage("load", _half_loaded(signum)),
                              Stage("transform", lambda c: later.append("ran"))))
    with pytest.raises(RunInterrupted) as stopped:
        run_pipeline(pipeline, settings, lake, wh)
    assert stopped.value.exit_code == code and stopped.value.signal_name == name
    assert f"p: interrupted by {name} during stage load" in str(stopped.value)
    assert later == [] and wh.query("select count(*) from raw.t") == [(0,)], "nothing of the stage stays"
    assert wh.query("select status, error, ended_at is not null from ops.pipeline_runs") == [
        ("failed", f"interrupted by {name}", True)]
    assert wh.query("select stage, status, error, ended_at is not null from ops.stage_runs order by started_at") == [
        ("fetch", "success", None, True), ("load", "failed", f"interrupted by {name}", True)]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler is put back after the run"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with exclusive(settings.home, "run-p", "pipeline p"):  # the lock is free
        pass
    assert run_pipeline(Pipeline("p", pipeline.stages[:1]), settings, lake, wh).status == "success"


def test_a_library_turning_the_signal_into_its_own_error_still_stops_the_run(parts) -> None:
    """DuckDB answers an interrupted query with RuntimeError('Query interrupted')."""
    settings, lake, wh = parts

    def duckdb_like(ctx: RunContext) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt as exc:
            raise RuntimeError("Query interrupted") from exc

    with pytest.raises(RunInterrupted, match="interrupted by SIGTERM during stage load") as stopped:
        run_pipeline(Pipeline("p", (Stage("load", duckdb_like),)), settings, lake, wh)
    assert isinstance(stopped.value.__cause__, RuntimeError)
    assert wh.query("select status, error from ops.pipeline_runs") == [("failed", "interrupted by SIGTERM")]
    assert wh.query("select stage, status, error from ops.stage_runs") == [
        ("load", "failed", "interrupted by SIGTERM")]


def test_a_handler_installed_by_the_caller_is_left_alone(parts) -> None:
    """`lakebox watch` finishes the run in hand on SIGTERM and stops after it."""
    settings, lake, wh = parts
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        outcome = run_pipeline(Pipeline("p", (Stage("a", lambda c: os.kill(os.getpid(), signal.SIGTERM)),)),
                               settings, lake, wh)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert outcome.status == "success" and seen == [signal.SIGTERM]


def test_sigterm_raising_keyboardinterrupt_already_is_named(parts) -> None:
    """Dagster's processes map SIGTERM to Python's Ctrl-C handler; the run still says SIGTERM."""
    settings, lake, wh = parts
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with pytest.raises(RunInterrupted, match="interrupted by SIGTERM"):
        run_pipeline(Pipeline("p", (Stage("a", lambda c: os.kill(os.getpid(), signal.SIGTERM)),)), settings, lake, wh)
    assert wh.query("select status, error from ops.pipeline_runs") == [("failed", "interrupted by SIGTERM")]
    assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler


def test_another_stop_is_recorded_too_and_passed_on_unchanged(parts) -> None:
    """A caller's own BaseException (Dagster's interruption, SystemExit) closes the row too."""
    settings, lake, wh = parts

    def exits(ctx: RunContext) -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        run_pipeline(Pipeline("p", (Stage("a", exits),)), settings, lake, wh)
    assert wh.query("select status, error from ops.pipeline_runs") == [("failed", "interrupted: SystemExit")]
    assert wh.query("select stage, status from ops.stage_runs") == [("a", "failed")]


def test_the_lock_tells_a_killed_run_from_a_live_one(tmp_path: Path) -> None:
    with exclusive(tmp_path, "run-p", "pipeline p", note="p-1"):
        assert not process_gone(tmp_path, "run-p", "p-1"), "this process holds it"
    dead = os.fork()
    if dead == 0:  # a child that takes the lock for run p-2 and dies
        with exclusive(tmp_path, "run-p", "pipeline p", note="p-2"):
            os._exit(0)
    os.waitpid(dead, 0)
    assert process_gone(tmp_path, "run-p", "p-2")
    assert not process_gone(tmp_path, "run-p", "p-1"), "the lock names another run: it cannot tell"
    assert not process_gone(tmp_path, "run-q", "q-1"), "never taken on this home"
