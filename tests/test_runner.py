"""The runner: stage order, audit rows, failures and the quality gate."""

from pathlib import Path

import pytest

from lakebox.errors import SourceFailedError
from lakebox.lake import Lake
from lakebox.runner import Pipeline, RunContext, Stage, StageResult, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from lakebox.warehouse import ops


@pytest.fixture
def parts(tmp_path: Path):
    settings = Settings.load(env={"LAKEBOX_HOME": str(tmp_path)}, cwd=tmp_path)
    with open_warehouse(settings) as wh:
        yield settings, Lake(settings.lake), wh


def test_stages_run_in_order_and_are_audited(parts) -> None:
    settings, lake, wh = parts
    seen: list[str] = []

    def stage(name: str, rows: int):
        def fn(ctx: RunContext) -> StageResult:
            seen.append(name)
            return StageResult(rows_in=rows, rows_out=rows)
        return Stage(name, fn)

    outcome = run_pipeline(Pipeline("p", (stage("a", 5), stage("b", 3))), settings, lake, wh)
    assert seen == ["a", "b"] and outcome.status == "success"
    run = wh.query("select pipeline, status, rows_in, rows_out, error, ended_at is not null from ops.pipeline_runs")
    assert run == [("p", "success", 5, 3, None, True)]
    stages = wh.query("select stage, status, rows_in from ops.stage_runs order by started_at")
    assert stages == [("a", "success", 5), ("b", "success", 3)]


def test_a_failing_stage_stops_the_run_and_records_why(parts) -> None:
    settings, lake, wh = parts
    later: list[str] = []

    def boom(ctx: RunContext) -> None:
        raise SourceFailedError("source x: down")

    pipeline = Pipeline("p", (Stage("boom", boom), Stage("later", lambda ctx: later.append("ran"))))
    outcome = run_pipeline(pipeline, settings, lake, wh)
    assert outcome.status == "failed" and later == []
    assert wh.query("select status, error from ops.pipeline_runs") == [("failed", "source x: down")]
    assert wh.query("select stage, status, error from ops.stage_runs") == [("boom", "failed", "source x: down")]


def test_quarantined_input_stops_before_the_next_stage(parts) -> None:
    settings, lake, wh = parts
    later: list[str] = []

    def gate(ctx: RunContext) -> StageResult:
        ctx.quarantine_failure("source s, batch b1: rule not_null, column id, 2 row(s): null values")
        return StageResult(rows_in=10, rows_out=8)

    outcome = run_pipeline(Pipeline("p", (Stage("load", gate), Stage("transform", lambda c: later.append(1)))),
                           settings, lake, wh)
    assert outcome.status == "failed" and later == []
    assert "batch b1: rule not_null, column id" in outcome.error
    assert f"{lake.url}/quarantine/" in outcome.error and outcome.rows_out == 8
    assert wh.query("select stage, status, rows_in, rows_out from ops.stage_runs") == [("load", "failed", 10, 8)]


def test_an_interrupted_run_is_closed_by_the_next(parts) -> None:
    settings, lake, wh = parts
    ops.start_run(wh, "p-old", "p")  # a process that died mid-run leaves this behind
    run_pipeline(Pipeline("p", (Stage("a", lambda c: None),)), settings, lake, wh)
    rows = dict(wh.query("select run_id, status from ops.pipeline_runs"))
    assert rows["p-old"] == "failed" and list(rows.values()).count("success") == 1
