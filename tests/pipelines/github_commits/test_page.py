"""The GitHub dashboard page, rendered by Streamlit's AppTest over a real DuckDB file:
friendly notes before anything ran, the marts' figures, then the classifier's sections."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

import lakebox.pipelines.github_commits

PAGE = Path(lakebox.pipelines.github_commits.__file__).parent / "page.py"


@pytest.fixture
def warehouse(lakebox_env: dict[str, str]) -> Path:
    path = Path(lakebox_env["LAKEBOX_HOME"]) / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema analytics; create schema ml")
        con.execute("""create table analytics.commit_activity as select * from (values
            ('acme/a', 'k1', 'Ada', 'ada', date '2026-06-01', 3, 1, 2, 2, 1),
            ('acme/a', 'k2', 'Grace', null, date '2026-06-02', 2, 0, 2, 1, 0),
            ('acme/b', 'k1', 'Ada', 'ada', date '2026-06-09', 5, 0, 4, 3, 0))
            as t(repo, author_key, author_name, author_login, activity_date, commits, merges,
                 conventional_commits, distinct_types, breaking_changes)""")
        con.execute("""create table analytics.commit_type_trends as select * from (values
            ('acme/a', date '2026-06-01', 'feat', 3, 0.6), ('acme/a', date '2026-06-01', 'merge', 2, 0.4),
            ('acme/b', date '2026-06-08', 'fix', 5, 1.0)) as t(repo, week_start, commit_type, commits, share)""")
    return path


def render() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def notes(at: AppTest) -> str:
    return " ".join(i.value for i in at.info)


def test_before_any_run_the_page_says_what_to_run(lakebox_env: dict[str, str]) -> None:
    assert "lakebox run github_commits" in notes(render())


def test_activity_figures_and_notes_for_the_ml_sections_not_yet_run(warehouse: Path) -> None:
    at = render()
    figures = {m.label: m.value for m in at.metric}
    assert figures["Commits"] == "10" and figures["Authors"] == "2" and figures["Merges"] == "1"
    assert figures["Conventional"] == "80%" and figures["Breaking changes"] == "1"
    assert "No model decisions yet" in notes(at) and "No predictions yet" in notes(at)
    assert "No drift report yet" in notes(at)


def test_a_repository_filter_narrows_the_figures(warehouse: Path) -> None:
    at = render()
    at.sidebar.multiselect[0].set_value(["acme/b"]).run()
    assert {m.label: m.value for m in at.metric}["Commits"] == "5"


def test_classifier_sections_show_champion_agreement_and_drift(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""create table ml.commit_features as select *, timestamp '2026-06-09 10:00' + to_hours(n) as
            committed_at, 'change ' || sha as message_body from (values
            ('s1', 'acme/a', 'feat', 1), ('s2', 'acme/a', 'fix', 2), ('s3', 'acme/a', 'fix', 3), ('s4', 'acme/a', null, 4))
            as t(sha, repo, label, n)""")
        con.execute("""create table ml.commit_predictions as select * from (values
            ('s1', 'feat', 0.9), ('s2', 'fix', 0.8), ('s3', 'feat', 0.6), ('s4', 'docs', 0.5))
            as t(sha, predicted_type, probability)""")
        con.execute("""create table ml.model_decisions as select * from (values
            ('commit-classifier', '1', 'champion', 'macro_f1', 0.66, null, 'first version', timestamp '2026-06-08 10:00', 'r1'),
            ('commit-classifier', '2', 'champion', 'macro_f1', 0.71, 0.66, 'beats by 0.05', timestamp '2026-06-10 10:00', 'r2'),
            ('commit-classifier', '3', 'challenger', 'macro_f1', 0.70, 0.71, 'below', timestamp '2026-06-11 10:00', 'r3'),
            ('other-model', '9', 'champion', 'macro_f1', 0.99, null, 'not ours', timestamp '2026-06-12 10:00', 'r4'))
            as t(model_name, version, decision, metric, value, champion_value, reason, decided_at, run_id)""")
        con.execute("""create table ml.drift_report as select * from (values
            ('commit-classifier', 'hour', 'ks', 0.31, 0.001, 0.05, true, timestamp '2026-06-10 11:00'),
            ('commit-classifier', 'message_length', 'ks', 0.02, 0.8, 0.05, false, timestamp '2026-06-10 11:00'),
            ('commit-classifier', 'weekday', 'psi', 0.5, null, 0.2, true, timestamp '2026-06-01 11:00'))
            as t(model_name, feature, method, statistic, p_value, threshold, drifted, computed_at)""")
        con.execute("alter table ml.drift_report add column window_start timestamp")
        con.execute("alter table ml.drift_report add column window_end timestamp")
    at = render()
    figures = {m.label: m.value for m in at.metric}
    assert figures["Champion version"] == "2" and figures["Champion macro_f1"] == "0.710"
    assert figures["Versions decided"] == "3"
    assert figures["Agreement with the conventional type"] == "66.7%"  # s1, s2 right; s3 wrong; s4 unlabelled
    assert figures["Features flagged"] == "1 of 2"  # the newest report only
    assert [w.value for w in at.warning] == ["Drift in the newest window: hour"]
    recent = next(d.value for d in at.dataframe if "Predicted" in d.value.columns)
    assert list(recent["Message (without its type)"]) == ["change s4", "change s3", "change s2", "change s1"]
