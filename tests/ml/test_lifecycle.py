"""The champion rule both ways, inference of unscored rows only, and a clean skip when
there are too few labels, on the real commit history and a real MLflow SQLite store."""

from __future__ import annotations

import dataclasses

import pytest

from lakebox.ml import champion_version, predict, train
from lakebox.ml.tracking import connect
from lakebox.pipelines.github_commits.classifier import SPEC, candidates


def _only(*names: str):
    return dataclasses.replace(SPEC, candidates=lambda: {n: c for n, c in candidates().items() if n in names})


def _weak():
    def factory():
        from sklearn.dummy import DummyClassifier

        return {"majority": DummyClassifier(strategy="most_frequent")}

    return dataclasses.replace(SPEC, candidates=factory)


def _decisions(warehouse):
    return warehouse.query("select version, decision, metric, value, champion_value, reason, run_id "
                           "from ml.model_decisions order by decided_at")


@pytest.mark.slow
def test_a_better_version_becomes_champion_a_same_one_challenger(settings, commit_warehouse) -> None:
    first = train(settings, commit_warehouse, _weak())
    assert (first.decision.version, first.decision.decision) == ("1", "champion")

    better = train(settings, commit_warehouse, _only("logistic_regression"))
    assert (better.decision.version, better.decision.decision) == ("2", "champion")
    # the old champion was scored on the new holdout: its macro F1 there is the majority's
    assert better.decision.champion_value == first.decision.value
    assert better.decision.value >= first.decision.value + 0.01

    same = train(settings, commit_warehouse, _only("logistic_regression"))
    assert (same.decision.version, same.decision.decision) == ("3", "challenger")
    assert same.decision.champion_value == better.decision.value  # same data, same model: gain 0

    client = connect(settings)
    assert champion_version(client, SPEC.name) == "2"
    assert str(client.get_model_version_by_alias(SPEC.name, "challenger").version) == "3"
    rows = _decisions(commit_warehouse)
    assert [(v, d) for v, d, *_ in rows] == [("1", "champion"), ("2", "champion"), ("3", "challenger")]
    assert rows[0][4] is None and "first version" in rows[0][5]
    assert "< margin 0.01" in rows[2][5] and "champion kept" in rows[2][5]
    assert rows[1][6] == better.best.run_id
    tags = client.get_model_version(SPEC.name, "3").tags
    assert tags["lakebox.decision"] == "challenger" and "champion kept" in tags["lakebox.decision_reason"]
    assert client.get_run(same.best.run_id).data.tags["lakebox.decision"] == "challenger"


@pytest.mark.slow
def test_inference_scores_only_unscored_rows(settings, commit_warehouse) -> None:
    wh = commit_warehouse
    train(settings, wh, _only("logistic_regression"))
    first = predict(settings, wh, SPEC)
    assert (first.version, first.rows_scored) == ("1", 3466)
    assert predict(settings, wh, SPEC).rows_scored == 0

    # three new commits arrive (one without a label); only they are scored
    wh.execute("""insert into ml.commit_features
        select substr(sha, 1, 39) || 'x', repo, author_key, committed_at + interval 400 day, hour, weekday,
               message_body, message_length, is_merge, parent_count, author_prior_commits, label
        from ml.commit_features order by committed_at desc limit 3""")
    wh.execute("update ml.commit_features set label = null where sha = "
               "(select max(sha) from ml.commit_features where sha like '%x')")
    again = predict(settings, wh, SPEC)
    assert again.rows_scored == 3
    rows = wh.query("select count(*), count(distinct sha), min(probability), max(probability), "
                    "count(distinct model_version) from ml.commit_predictions")
    assert rows == [(3469, 3469, rows[0][2], rows[0][3], 1)]
    assert 0 < rows[0][2] <= rows[0][3] <= 1
    cols = [r[0] for r in wh.query("select column_name from information_schema.columns where table_schema = 'ml' "
                                   "and table_name = 'commit_predictions' order by ordinal_position")]
    assert cols == ["sha", "predicted_type", "probability", "model_name", "model_version", "scored_at"]
    predicted = {r[0] for r in wh.query("select distinct predicted_type from ml.commit_predictions")}
    assert predicted <= {"feat", "fix", "docs", "chore", "refactor", "test", "build", "ci", "other"}
    assert "chore" in predicted and len(predicted) >= 4


def test_too_few_labelled_commits_skip_training_cleanly(settings, commit_warehouse) -> None:
    wh = commit_warehouse
    wh.execute("update ml.commit_features set label = null where sha not in "
               "(select sha from ml.commit_features where label is not null order by sha limit 150)")

    result = train(settings, wh, SPEC)

    assert result.status == "skipped" and result.decision is None and result.labelled_rows == 150
    assert "only 150 labelled rows, at least 200" in result.message
    assert not wh.table_exists("ml", "model_decisions")
    assert predict(settings, wh, SPEC).rows_scored == 0  # no champion: nothing scored, no error
    assert not wh.table_exists("ml", "commit_predictions")
