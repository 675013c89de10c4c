"""`lakebox run who_gho` end to end, offline, against the stand-in on loopback: paging
through the shared REST source, the gate, raw tables, dbt. A re-run with nothing new loads
nothing; a GHO revision loads only the pages that changed and staging then holds the
revised values while raw keeps both; a bad page is quarantined while the marts are built;
an unknown indicator is a clear error. The ML stages train, register and predict, and
the drift report flags nothing while the data has not shifted."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from lakebox.ingest.standin import serve_in_thread
from lakebox.pipelines.who_gho.api import FaultPlan, create_app
from lakebox.pipelines.who_gho.generator import generate_gho
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SIZE = {"countries": 40, "years": 10, "seed": 4}


def query(env: dict[str, str], sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(Path(env["LAKEBOX_HOME"]) / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_runs_reruns_and_revisions(lakebox_env: dict[str, str]) -> None:
    env = {**lakebox_env, "LAKEBOX_WHO_PAGE_SIZE": "100"}
    with serve_in_thread(create_app(**SIZE, faults=FaultPlan.parse(["500:1"]))) as first:
        env["LAKEBOX_WHO_API_URL"] = first.url
        result = run_cli("run", "who_gho", env=env)
        assert result.returncode == 0, result.stderr
        batches = query(env, "select count(*) from ops.batches where source = 'who_gho'")[0][0]
        assert batches > 2 * 2  # several pages per indicator
        raw = query(env, "select count(*) from raw.who_observations")[0][0]
        again = run_cli("run", "who_gho", env=env)
        assert again.returncode == 0, again.stderr
        assert query(env, "select count(*) from ops.batches where source = 'who_gho'")[0][0] == batches
        assert query(env, "select count(*) from raw.who_observations")[0][0] == raw
    assert query(env, "select count(*) from analytics.life_expectancy_trends")[0][0] == SIZE["countries"]
    decisions = query(env, "select model_name, version, decision from ml.model_decisions")
    assert decisions == [("life-expectancy", "1", "champion")]
    latest = query(env, "select count(distinct p.country_code) from ml.life_expectancy_predictions as p "
                        "join analytics.life_expectancy_trends as t on t.country_code = p.country_code "
                        "and p.year > t.last_year")
    assert latest == [(SIZE["countries"],)]  # each country's next observation, predicted
    drift = query(env, "select count(*), count(distinct computed_at), count(*) filter (where drifted) "
                       "from ml.drift_report")
    assert drift == [(3 * 2, 2, 0)]  # 3 features on each run; the same data drifts nowhere

    with serve_in_thread(create_app(**SIZE, revision=1)) as revised:
        env["LAKEBOX_WHO_API_URL"] = revised.url
        result = run_cli("run", "who_gho", env=env)
        assert result.returncode == 0, result.stderr
    new = query(env, "select count(*) from ops.batches where source = 'who_gho'")[0][0] - batches
    assert 0 < new < batches  # only the pages that carry a revised value
    assert query(env, "select count(*) filter (where drifted) from ml.drift_report") == [(0,)]  # 8% revised
    expected = {(r["IndicatorCode"], r["SpatialDim"], r["TimeDim"], r["Dim1"]): r["NumericValue"]
                for records in generate_gho(**SIZE, revision=1).observations.values() for r in records
                if r["SpatialDimType"] == "COUNTRY"}
    sexes = {"both": "SEX_BTSX", "male": "SEX_MLE", "female": "SEX_FMLE"}
    got = {(i, c, y, sexes[s]): v for i, c, y, s, v in query(
        env, "select indicator, country_code, year, sex, value from staging.stg_who_observations")}
    assert got == pytest.approx(expected)
    assert query(env, "select count(*) from (select id from raw.who_observations group by id "
                      "having count(distinct date) = 2) as t")[0][0] > 0  # raw keeps both versions


def test_a_bad_page_is_quarantined_and_the_marts_still_build(lakebox_env: dict[str, str]) -> None:
    plan = FaultPlan.parse(["unknown_status:1"])
    with serve_in_thread(create_app(**SIZE, faults=plan)) as api:
        env = {**lakebox_env, "LAKEBOX_WHO_API_URL": api.url, "LAKEBOX_WHO_PAGE_SIZE": "100"}
        result = run_cli("run", "who_gho", env=env)
    assert result.returncode == 4, result.stderr
    assert "accepted_values" in result.stderr and "dim1" in result.stderr
    assert query(env, "select count(*) from ops.batches where source = 'who_gho' and status = 'quarantined'") == [(1,)]
    assert query(env, "select count(*) from analytics.life_expectancy_by_country_year")[0][0] > 0


def test_unknown_indicator_is_a_clear_error(lakebox_env: dict[str, str]) -> None:
    with serve_in_thread(create_app(countries=3, years=3, seed=1)) as api:
        env = {**lakebox_env, "LAKEBOX_WHO_API_URL": api.url, "LAKEBOX_WHO_INDICATORS": "WHOSIS_999999"}
        result = run_cli("run", "who_gho", env=env)
    assert result.returncode not in (0, 4)
    assert "WHOSIS_999999" in result.stderr and "LAKEBOX_WHO_INDICATORS" in result.stderr
