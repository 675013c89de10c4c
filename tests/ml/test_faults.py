"""The lifecycle under faults a hostile probe found (issue 23): a training split of one
class, drift that could not be computed, on the real commit history."""

from __future__ import annotations

from typer.testing import CliRunner

from lakebox.ml_cli import ml_app
from tests.ml.test_stages import FAST


def _keep_newest(warehouse, n: int) -> None:
    warehouse.execute(f"delete from ml.commit_features where sha not in "
                      f"(select sha from ml.commit_features order by committed_at desc limit {n})")


def test_one_class_in_the_training_split_skips_training(settings, commit_warehouse, only_model) -> None:
    fast_pipeline = only_model(FAST)
    wh = commit_warehouse
    _keep_newest(wh, 300)  # the oldest 240 (the training part) are fix:, the newest 60 (the holdout) feat:
    wh.execute("update ml.commit_features set label = 'fix'")
    wh.execute("update ml.commit_features set label = 'feat' where sha in "
               "(select sha from ml.commit_features order by committed_at desc limit 60)")
    wh.release()

    result = CliRunner().invoke(ml_app, ["train", fast_pipeline])

    assert result.exit_code == 0, result.output
    assert result.exception is None and "Traceback" not in result.output
    assert ("the training rows (the oldest 240 of 300 labelled) hold 1 class (fix), at least 2 are needed "
            "to train; training skipped") in result.output
    assert not wh.table_exists("ml", "model_decisions")  # nothing registered


def test_drift_that_could_not_be_computed_fails_fail_on_drift(settings, commit_warehouse, only_model) -> None:
    fast_pipeline = only_model(FAST)
    _keep_newest(commit_warehouse, 40)  # a window and its reference need 60
    commit_warehouse.release()
    runner = CliRunner()

    plain = runner.invoke(ml_app, ["drift", fast_pipeline])
    assert plain.exit_code == 0 and "40 rows, at least 60 are needed" in plain.output

    strict = runner.invoke(ml_app, ["drift", fast_pipeline, "--fail-on-drift"])
    assert strict.exit_code == 1, strict.output
    assert "drift could not be computed for commit-classifier: model commit-classifier: 40 rows" in strict.output
    assert not commit_warehouse.table_exists("ml", "drift_report")
