"""SIGTERM to a real `lakebox run github_commits` in its ML stages (the kit is in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakebox.locks import exclusive
from tests.conftest import run_cli
from tests.interrupts.conftest import INTERRUPTED, Child, _clean_env, assert_consistent, q, stage_started

pytestmark = pytest.mark.slow


ML_STAGES = ["predict", "train"]


@pytest.mark.parametrize("stage", ML_STAGES)
def test_sigterm_in_an_ml_stage(tmp_path_factory: pytest.TempPathFactory, stage: str) -> None:
    """github_commits (offline, its bundled stand-in): predict and train take seconds of
    their own (MLflow, fitting), so the "stage started" line is where the test signals."""
    env = {**_clean_env(tmp_path_factory.mktemp("github")), "LAKEBOX_DEMO_GITHUB_COMMITS": "300"}
    child = Child("none", "github_commits", env)
    child.wait_for(stage_started(stage))
    assert child.stop() == 143, child.stderr
    ((run_id, status, error),) = q(env, "select run_id, status, error from ops.pipeline_runs")
    assert (status, error) == ("failed", INTERRUPTED)
    assert q(env, f"select stage, status, error from ops.stage_runs where run_id = '{run_id}' "
                  "order by started_at")[-1] == (stage, "failed", INTERRUPTED)
    assert_consistent(env, "github_commits")
    with exclusive(Path(env["LAKEBOX_HOME"]), "run-github_commits", "pipeline github_commits"):
        pass

    again = run_cli("run", "github_commits", env=env)
    assert again.returncode == 0, again.stderr
    assert [s for (s,) in q(env, "select status from ops.pipeline_runs order by started_at")] == ["failed", "success"]
    assert q(env, "select count(*) - count(distinct sha) from ml.commit_predictions") == [(0,)], \
        "no commit scored twice"
