"""Raw inputs online, the same features as batch: a real server on loopback answers for rows
as callers have them (a commit as staging.stg_commits names its columns; a country, year and
sex), and its answers on 1,000 rows equal ml.*_predictions for the same version."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from lakebox.bench.serving import stg_and_features_sql
from lakebox.ml import data, predict, train
from lakebox.ml.predict import features_from_raw
from lakebox.ml.spec import RawRowsRejected
from lakebox.pipelines.github_commits.classifier import SPEC as COMMITS
from lakebox.pipelines.github_commits.online import COLUMNS as COMMIT_COLUMNS
from lakebox.warehouse import Warehouse

from .conftest import WHO_GOOD
from .test_serving import running

WHO = WHO_GOOD.name


def _fast_classifier() -> dict[str, object]:
    from lakebox.pipelines.github_commits.classifier import candidates

    return {"logistic_regression": candidates()["logistic_regression"]}


FAST_COMMITS = dataclasses.replace(COMMITS, candidates=_fast_classifier)


@pytest.fixture
def stg_warehouse(warehouse: Warehouse, history: Path) -> Warehouse:
    warehouse.execute(stg_and_features_sql(history))
    return warehouse


def _stg_rows(warehouse: Warehouse, shas: list[str]) -> pa.Table:
    names = ", ".join(name for name, _ in COMMIT_COLUMNS)
    listed = ", ".join(f"'{s}'" for s in shas)
    return warehouse.query_arrow(f"select {names} from staging.stg_commits where sha in ({listed})")


def test_commit_online_equals_batch_on_1000_raw_commits(settings, stg_warehouse) -> None:
    assert train(settings, stg_warehouse, FAST_COMMITS).decision.decision == "champion"
    batch = predict(settings, stg_warehouse, FAST_COMMITS)
    assert batch.rows_scored == 3466
    scored = stg_warehouse.query_arrow(
        "select sha, predicted_type, probability from ml.commit_predictions order by sha limit 1000")
    raw = _stg_rows(stg_warehouse, scored.column("sha").to_pylist())
    order = {s: i for i, s in enumerate(scored.column("sha").to_pylist())}
    records = sorted(raw.to_pylist(), key=lambda r: order[r["sha"]])
    for r in records:
        r["committed_at"] = r["committed_at"].isoformat()
    with running(settings, [FAST_COMMITS]) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post(f"/models/{COMMITS.name}/invocations", json={"dataframe_records": records})
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Lakebox-Version"] == batch.version
        assert answer.json()["predictions"] == scored.column("predicted_type").to_pylist()
        assert answer.json()["probability"] == pytest.approx(scored.column("probability").to_pylist(), abs=1e-9)

        # concurrent single-row requests are scored together (app.Batcher): each gets its own answer
        async def one_each() -> list[str]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                answers = await asyncio.gather(*(client.post(f"/models/{COMMITS.name}/invocations",
                                                             json={"dataframe_records": [r]}) for r in records[:64]))
            return [a.json()["predictions"][0] for a in answers]

        assert asyncio.run(one_each()) == scored.column("predicted_type").to_pylist()[:64]

        described = http.get(f"/models/{COMMITS.name}").json()
        assert described["input_kind"] == "raw"
        assert [(c["name"], c["type"]) for c in described["inputs"]["champion"]] == list(COMMIT_COLUMNS)

        # what the caller has is what it must send: the model's own feature columns are refused
        features = data.read_rows(stg_warehouse, COMMITS).slice(0, 1).select(list(COMMITS.features)).to_pylist()
        wrong = http.post(f"/models/{COMMITS.name}/invocations", json={"dataframe_records": features})
        assert wrong.status_code == 400 and "message_subject (string)" in wrong.json()["error"]


def test_a_new_commit_gets_its_authors_history_from_the_warehouse(stg_warehouse) -> None:
    """Each author's newest commit, left out of the lookup (as a commit not ingested yet is),
    gets the features batch scoring reads for it (newest in both batch windows' orders)."""
    rows = data.read_rows(stg_warehouse, COMMITS)
    newest = stg_warehouse.query(
        "select sha from (select f.sha, row_number() over (partition by f.repo, f.author_key "
        "order by f.committed_at desc, s.authored_at desc, f.sha desc) as n, row_number() over (partition by "
        "f.author_key order by f.committed_at desc, f.sha desc) as m from ml.commit_features as f "
        "join staging.stg_commits as s using (sha)) where n = 1 and m = 1")
    fresh = [r[0] for r in newest]
    assert len(fresh) > 20
    listed = ", ".join(f"'{s}'" for s in fresh)
    lookup = stg_warehouse.query_arrow(f"select * from ({COMMITS.raw_inputs.lookup_sql}) where sha not in ({listed})")
    known = rows.column("sha").to_pylist()[:40]  # with commits it has: both kinds in one request, in order
    asked = _stg_rows(stg_warehouse, fresh + known).sort_by("sha")
    got = features_from_raw(COMMITS, asked, COMMITS.raw_inputs.prepare(lookup))
    want = rows.filter(pa.compute.is_in(rows.column("sha"), pa.array(fresh + known))).sort_by("sha")
    for column in ("sha", *COMMITS.features):
        assert got.column(column).to_pylist() == pytest.approx(want.column(column).to_pylist()), column


def test_life_expectancy_online_equals_batch_on_1000_rows(settings, who_warehouse) -> None:
    assert train(settings, who_warehouse, WHO_GOOD).decision.decision == "champion"
    batch = predict(settings, who_warehouse, WHO_GOOD)
    scored = who_warehouse.query_arrow("select country_code, year, predicted from ml.life_expectancy_predictions "
                                       "order by year desc, country_code limit 1000")
    asked = {"country_code": scored.column("country_code").to_pylist(), "year": scored.column("year").to_pylist(),
             "sex": ["both"] * scored.num_rows}
    with running(settings, [WHO_GOOD]) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post(f"/models/{WHO}/invocations", json={"inputs": asked})
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Lakebox-Version"] == batch.version
        assert answer.json()["predictions"] == pytest.approx(scored.column("predicted").to_pylist(), abs=1e-9)

        described = http.get(f"/models/{WHO}").json()
        assert [(c["name"], c["type"]) for c in described["inputs"]["champion"]] == [
            ("country_code", "string"), ("year", "long"), ("sex", "string")]

        female = http.post(f"/models/{WHO}/invocations",
                           json={"dataframe_records": [{"country_code": "C001", "year": 2020, "sex": "female"}]})
        assert female.status_code == 400 and "'female' not modelled" in female.json()["error"]
        unknown = http.post(f"/models/{WHO}/invocations",
                            json={"dataframe_records": [{"country_code": "XXX", "year": 2020, "sex": "both"}]})
        assert unknown.status_code == 400 and "('XXX', 2020)" in unknown.json()["error"]


def test_raw_rows_the_model_cannot_take_are_named(who_warehouse) -> None:
    lookup = who_warehouse.query_arrow(WHO_GOOD.raw_inputs.lookup_sql)
    too_early = pa.table({"country_code": ["C001"], "year": pa.array([2000], pa.int64()), "sex": ["both"]})
    with pytest.raises(RawRowsRejected, match=r"\('C001', 2000\)"):
        features_from_raw(WHO_GOOD, too_early, lookup)


def test_a_single_threaded_forest_scores_as_scikit_learn_does(stg_warehouse) -> None:
    """The serving path's tree-by-tree sum gives scikit-learn's probabilities to the bit."""
    import numpy as np
    from sklearn.pipeline import Pipeline

    from lakebox.ml.predict import _forest_proba
    from lakebox.ml.serving.catalog import single_threaded
    from lakebox.pipelines.github_commits.classifier import candidates

    rows = data.read_rows(stg_warehouse, COMMITS)
    frame = data.to_frame(rows, list(COMMITS.features))
    labelled = frame[rows.column("label").is_valid().to_numpy(zero_copy_only=False)]
    labels = rows.column("label").drop_null().to_numpy(zero_copy_only=False)
    forest: Pipeline = single_threaded(candidates()["random_forest"].fit(labelled, labels))
    np.testing.assert_array_equal(_forest_proba(forest, frame.iloc[:500]), forest.predict_proba(frame.iloc[:500]))
    assert _forest_proba(single_threaded(candidates()["logistic_regression"]), frame) is None


def test_a_lookup_not_built_yet_is_a_503_saying_what_to_run(settings, who_warehouse) -> None:
    assert train(settings, who_warehouse, WHO_GOOD).decision.decision == "champion"
    who_warehouse.execute("drop table ml.life_expectancy_features")
    asked = {"dataframe_records": [{"country_code": "C001", "year": 2020, "sex": "both"}]}
    with running(settings, [WHO_GOOD]) as (url, _), httpx.Client(base_url=url) as http:
        answer = http.post(f"/models/{WHO}/invocations", json=asked)
    assert answer.status_code == 503
    assert "lakebox run who_gho" in answer.json()["error"] and "Traceback" not in answer.text
