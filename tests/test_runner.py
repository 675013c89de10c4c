"""The runner: stage order, audit rows, failures and the quality gate."""

import logging
from pathlib import Path

import orjson
import pytest

from lakebox.errors import SourceFailedError
from lakebox.lake import Lake
from lakebox.log import DailyFileHandler, JsonLinesFormatter
from lakebox.quality.gate import CheckResult, quarantine
from lakebox.runner import Pipeline, RunContext, Stage, StageResult, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse, ops
from lakebox.warehouse.ops import quarantine as quarantine_items


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


def _quarantine_one(ctx: RunContext) -> str:
    """A stage's gate quarantining one landed batch through the shared path."""
    manifest = ctx.lake.land_batch("s", b'{"id": null}', "json")
    ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
    with ctx.warehouse.transaction():
        return quarantine(ctx, source="s", batch_id=manifest.batch_id, lake_key=manifest.key, hint="fix it",
                          results=[CheckResult("not_null", "id", False, 1, [{"id": None}], "null values", rows=(1,))])


def test_quarantined_input_keeps_the_run_going_and_ends_it_partial(parts) -> None:
    settings, lake, wh = parts
    later: list[str] = []

    def gate(ctx: RunContext) -> StageResult:
        _quarantine_one(ctx)
        return StageResult(rows_in=10, rows_out=8)

    outcome = run_pipeline(Pipeline("p", (Stage("load", gate), Stage("transform", lambda c: later.append(1)))),
                           settings, lake, wh)
    assert outcome.status == "partial" and later == [1], "the next stage (the marts) still runs"
    (item,) = outcome.quarantined
    assert item.source == "s" and item.status == "open" and item.opened_run_id == outcome.run_id
    assert item.id in outcome.error and "rule not_null column id, 1 row(s)" in outcome.error
    assert wh.query("select status, error is not null from ops.pipeline_runs") == [("partial", True)]
    assert wh.query("select stage, status from ops.stage_runs order by started_at") == [
        ("load", "success"), ("transform", "success")]
    errors = orjson.loads(lake.read_bytes(item.quarantine_path + ".errors.json"))
    assert errors["rules"] == [{"rule": "not_null", "column": "id", "failing_rows": 1, "rows": [1],
                                "detail": "null values", "sample": [{"id": None}]}]
    assert wh.query("select status, error from ops.batches") == [
        ("quarantined", '[{"rule":"not_null","column":"id","failing_rows":1,"rows":[1],"detail":"null values"}]')]

    again = run_pipeline(Pipeline("p", (Stage("a", lambda c: None),)), settings, lake, wh)
    assert again.status == "partial" and [i.id for i in again.quarantined] == [item.id], "still open"
    quarantine_items.dismiss(wh, item.id, reason="test data", by="me")
    assert run_pipeline(Pipeline("p", (Stage("a", lambda c: None),)), settings, lake, wh).status == "success"


def test_a_gate_that_stops_fails_the_run_before_the_next_stage(parts) -> None:
    settings, lake, wh = parts
    later: list[str] = []

    def gate(ctx: RunContext) -> StageResult:
        _quarantine_one(ctx)
        ctx.stop_at_gate("fail-fast policy: stopped at batch b1")
        return StageResult(rows_in=10, rows_out=8)

    outcome = run_pipeline(Pipeline("p", (Stage("load", gate), Stage("transform", lambda c: later.append(1)))),
                           settings, lake, wh)
    assert outcome.status == "failed" and later == []
    assert "fail-fast policy: stopped at batch b1" in outcome.error
    assert f"{lake.url}/quarantine/" in outcome.error and outcome.rows_out == 8
    assert wh.query("select stage, status, rows_in, rows_out from ops.stage_runs") == [("load", "failed", 10, 8)]


def test_an_unexpected_error_logs_its_whole_traceback(parts, tmp_path: Path) -> None:
    settings, lake, wh = parts

    def deep() -> None:
        raise ZeroDivisionError("boom")

    def stage(ctx: RunContext) -> None:
        deep()

    (tmp_path / "logs").mkdir()
    handler = DailyFileHandler(tmp_path / "logs")
    handler.setFormatter(JsonLinesFormatter())
    logging.getLogger("lakebox").addHandler(handler)
    try:
        outcome = run_pipeline(Pipeline("p", (Stage("s", stage),)), settings, lake, wh)
    finally:
        logging.getLogger("lakebox").removeHandler(handler)
        handler.close()
    assert outcome.status == "failed" and outcome.error == "ZeroDivisionError: boom"
    lines = [orjson.loads(line) for f in (tmp_path / "logs").glob("*") for line in f.read_text().splitlines()]
    (failed,) = [line for line in lines if line["msg"] == "stage failed"]
    assert "in deep" in failed["traceback"] and "in stage" in failed["traceback"]


def test_an_interrupted_run_is_closed_by_the_next(parts) -> None:
    settings, lake, wh = parts
    ops.start_run(wh, "p-old", "p")  # a process that died mid-run leaves this behind
    run_pipeline(Pipeline("p", (Stage("a", lambda c: None),)), settings, lake, wh)
    rows = dict(wh.query("select run_id, status from ops.pipeline_runs"))
    assert rows["p-old"] == "failed" and list(rows.values()).count("success") == 1
