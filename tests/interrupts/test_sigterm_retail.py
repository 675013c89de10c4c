"""SIGTERM to a real `lakebox run retail` in each stage (the kit is in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.interrupts.conftest import CASES, RETAIL, check_stop_in_stage

pytestmark = pytest.mark.slow
RETAIL_CASES = [case for case in CASES if case[1] == RETAIL]


@pytest.mark.parametrize(("warehouse_kind", "pipeline", "stage", "point"), RETAIL_CASES,
                         ids=[f"{k}-{p}-{s}" for k, p, s, _ in RETAIL_CASES])
def test_sigterm_in_a_stage_records_the_run_failed_and_the_next_run_finishes_it(
    make_env: Callable[[str, str], dict[str, str]], warehouse_kind: str, pipeline: str, stage: str, point: str,
) -> None:
    check_stop_in_stage(make_env, warehouse_kind, pipeline, stage, point)
