"""SIGTERM to a real `lakebox run orders` in each stage (DuckDB; PostgreSQL where its work
differs), Ctrl-C, and SIGKILL then `lakebox status`. The kit is in conftest.py; retail and the
ML stages have their own files so the two test workers share the load."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from tests.conftest import run_cli
from tests.interrupts.conftest import CASES, ORDERS, Child, assert_consistent, check_stop_in_stage, q, stuck

pytestmark = pytest.mark.slow
ORDERS_CASES = [case for case in CASES if case[1] == ORDERS]


@pytest.mark.parametrize(("warehouse_kind", "pipeline", "stage", "point"), ORDERS_CASES,
                         ids=[f"{k}-{p}-{s}" for k, p, s, _ in ORDERS_CASES])
def test_sigterm_in_a_stage_records_the_run_failed_and_the_next_run_finishes_it(
    make_env: Callable[[str, str], dict[str, str]], warehouse_kind: str, pipeline: str, stage: str, point: str,
) -> None:
    check_stop_in_stage(make_env, warehouse_kind, pipeline, stage, point)


def test_ctrl_c_behaves_as_sigterm(make_env: Callable[[str, str], dict[str, str]]) -> None:
    env = make_env(ORDERS, "duckdb")
    child = Child("load", ORDERS, env)
    child.wait_for(stuck("load"))
    assert child.stop(signal.SIGINT) == 130, child.stderr
    assert q(env, "select status, error from ops.pipeline_runs") == [("failed", "interrupted by SIGINT")]
    assert q(env, "select stage, status from ops.stage_runs order by started_at") == [
        ("fetch", "success"), ("load", "failed")]
    assert q(env, "select count(*) from ops.batches where status = 'loaded'") == [(0,)]
    assert_consistent(env, ORDERS)


def test_a_killed_run_shows_interrupted_and_the_next_run_closes_it(
    make_env: Callable[[str, str], dict[str, str]],
) -> None:
    env = make_env(ORDERS, "duckdb")
    child = Child("load", ORDERS, env)
    child.wait_for(stuck("load"))
    assert child.stop(signal.SIGKILL) == -signal.SIGKILL
    assert q(env, "select status from ops.pipeline_runs") == [("running",)], "nothing could record it"
    shown = run_cli("status", env={**env, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "interrupted" in shown.stdout and "running" not in shown.stdout, shown.stdout
    assert_consistent(env, ORDERS)

    again = run_cli("run", ORDERS, env=env)
    assert again.returncode == 0, again.stderr
    assert q(env, "select status, error from ops.pipeline_runs order by started_at") == [
        ("failed", "interrupted: the process ended before the run finished"), ("success", None)]
    assert_consistent(env, ORDERS)
