"""The ML stages in a pipeline run, and the `lakebox ml` commands, on the real history."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from typer.testing import CliRunner

from lakebox.lake import Lake
from lakebox.ml import drift_stage, predict_stage, specs, train_stage
from lakebox.ml_cli import ml_app
from lakebox.pipelines.github_commits.classifier import SPEC, candidates
from lakebox.runner import RunContext

FAST = dataclasses.replace(SPEC, pipeline="commits_fast", retrain_after=3,
                           candidates=lambda: {"logistic_regression": candidates()["logistic_regression"]})


def _run(settings, warehouse, run_id: str) -> RunContext:
    ctx = RunContext(settings=settings, lake=Lake.from_settings(settings), warehouse=warehouse, run_id=run_id,
                     pipeline=FAST.pipeline)
    for stage in (predict_stage(FAST), train_stage(FAST), drift_stage(FAST)):
        stage(ctx)
    return ctx


def _new_commits(warehouse, n: int, days: int) -> None:
    warehouse.execute(f"""insert into ml.commit_features
        select substr(sha, 1, 38) || '{days:02d}', repo, author_key, committed_at + interval {days} day, hour, weekday,
               message_body, message_length, is_merge, parent_count, author_prior_commits, label
        from ml.commit_features where length(sha) = 40 order by committed_at desc limit {n}""")


@pytest.mark.slow
def test_new_rows_are_scored_by_the_champion_of_the_run_start(settings, commit_warehouse) -> None:
    wh = commit_warehouse
    first = _run(settings, wh, "run-1")  # no champion at the start: the model just trained scores
    assert first.extras["ml_champion_at_start"] == {FAST.name: None}
    assert wh.query("select model_version, count(*) from ml.commit_predictions group by 1") == [("1", 3466)]

    _new_commits(wh, 5, 400)  # enough new labels to retrain (retrain_after=3)
    second = _run(settings, wh, "run-2")
    assert second.extras["ml_champion_at_start"] == {FAST.name: "1"}
    scored = wh.query("select model_version, count(*) from ml.commit_predictions group by 1 order by 1")
    assert scored == [("1", 3471)]  # the new commits went to v1, the champion when the run started
    decided = wh.query("select version, decision from ml.model_decisions order by decided_at")
    assert decided == [("1", "champion"), ("2", "challenger")]  # same model, same data: kept
    assert wh.query("select count(distinct computed_at) from ml.drift_report")[0][0] == 2


@pytest.mark.slow
def test_training_is_not_due_without_enough_new_labels(settings, commit_warehouse) -> None:
    _run(settings, commit_warehouse, "run-1")
    _new_commits(commit_warehouse, 2, 500)
    _run(settings, commit_warehouse, "run-2")
    assert commit_warehouse.query("select count(*) from ml.model_decisions")[0][0] == 1


@pytest.fixture
def fast_pipeline(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(specs, "_registered", {})
    specs.register_spec(FAST)
    return FAST.pipeline


@pytest.mark.slow
def test_the_ml_commands(settings, commit_warehouse, fast_pipeline) -> None:
    commit_warehouse.release()  # the command opens the warehouse itself
    runner = CliRunner()

    trained = runner.invoke(ml_app, ["train", fast_pipeline])
    assert trained.exit_code == 0, trained.output
    assert "v1 -> champion: first version" in trained.output and "f1_macro" in trained.output

    predicted = runner.invoke(ml_app, ["predict", fast_pipeline])
    assert predicted.exit_code == 0 and "scored 3466 new row(s)" in predicted.output

    listed = runner.invoke(ml_app, ["models", fast_pipeline])
    assert listed.exit_code == 0 and "v1" in listed.output and "champion" in listed.output
    assert "\tv1\tchampion\t" in listed.output, "not a terminal: tab-separated lines"
    [version] = orjson.loads(runner.invoke(ml_app, ["models", fast_pipeline, "--json"]).stdout)
    assert (version["version"], version["aliases"]) == ("v1", "champion") and version["value"] > 0

    drifted = runner.invoke(ml_app, ["drift", fast_pipeline])
    assert drifted.exit_code == 0 and "message_body (first word)" in drifted.output
    features = orjson.loads(runner.invoke(ml_app, ["drift", fast_pipeline, "--json"]).stdout)
    assert "message_body (first word)" in {f["feature"] for f in features}

    unknown = runner.invoke(ml_app, ["train", "no_such_pipeline"])
    assert unknown.exit_code == 2 and "has no ML models" in unknown.output


def test_a_missing_feature_table_names_the_command_to_run(settings, warehouse, fast_pipeline) -> None:
    warehouse.release()
    result = CliRunner().invoke(ml_app, ["train", fast_pipeline])
    assert result.exit_code == 2
    assert "ml.commit_features missing" in result.output and f"lakebox run {fast_pipeline}" in result.output
