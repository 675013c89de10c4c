"""The WHO dashboard page through Streamlit's AppTest over a real DuckDB warehouse whose
marts hold a few known rows (the same columns dbt builds)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[3] / "src" / "lakebox" / "pipelines" / "who_gho" / "page.py"

MARTS = [
    "create schema analytics",
    "create schema ml",
    ("create table analytics.life_expectancy_by_country_year as select * from (values "
    "('KEN', 'Kenya', 'AFR', 'Africa', 2005, 53.0, 50.0, 56.0, 51.0, 55.0, 47.0), "
    "('KEN', 'Kenya', 'AFR', 'Africa', 2010, 57.0, 54.0, 60.0, 55.0, 59.0, 50.0), "
    "('KEN', 'Kenya', 'AFR', 'Africa', 2015, 60.0, 57.0, 63.0, 58.0, 62.5, 53.0), "
    "('NGA', 'Nigeria', 'AFR', 'Africa', 2015, 52.0, 49.0, 55.0, null, null, null)) as t(country_code, "
    "country_name, region, region_name, year, life_expectancy, life_expectancy_low, life_expectancy_high, "
    "life_expectancy_male, life_expectancy_female, healthy_life_expectancy)"),
    ("create table analytics.life_expectancy_trends as select * from (values "
    "('KEN', 'Kenya', 'AFR', 2005, 2015, 3, 53.0, 60.0, 7.0, 7.0, 1), "
    "('NGA', 'Nigeria', 'AFR', 2015, 2015, 1, 52.0, 52.0, 0.0, null, 2)) as t(country_code, country_name, region, "
    "first_year, last_year, observations, first_life_expectancy, last_life_expectancy, change_over_span, "
    "change_per_decade, rank_in_region)"),
]


@pytest.fixture
def warehouse(lakebox_env: dict[str, str]) -> Path:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    home.mkdir(parents=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for sql in MARTS:
            con.execute(sql)
    return home / "warehouse.duckdb"


def render() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_data(at: AppTest, index: int) -> list[pd.DataFrame]:
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    proto = at.get("vega_lite_chart")[index].proto
    return [convert_arrow_bytes_to_pandas_df(d.data.data) for d in proto.datasets]


def test_country_trend_band_gap_and_a_note_without_predictions(warehouse: Path) -> None:
    at = render()
    assert at.sidebar.selectbox[0].value == "KEN"  # Kenya sorts before Nigeria
    assert {m.label: m.value for m in at.metric} == {
        "Life expectancy (2015)": "60.0 y", "Healthy life expectancy": "53.0 y",
        "Change per decade": "+7.00 y", "Rank in AFR": "1 of 2",
    }
    datasets = chart_data(at, 0)
    lows = next(d for d in datasets if "low" in d.columns)
    assert lows[["year", "low", "high"]].values.tolist() == [[2005, 50.0, 56.0], [2010, 54.0, 60.0], [2015, 57.0, 63.0]]
    series = next(d for d in datasets if "series" in d.columns)
    assert set(series["series"]) == {"both sexes", "male", "female"}
    gap = chart_data(at, 1)[0]
    assert gap[["year", "sex_gap"]].values.tolist() == [[2005, 4.0], [2010, 4.0], [2015, 4.5]]
    assert any("No predictions yet" in i.value for i in at.info)
    ranks = next(d.value for d in at.dataframe if "Rank" in d.value.columns)  # the table shows human names
    assert ranks["Code"].tolist() == ["KEN", "NGA"]


def test_predictions_beside_actuals_and_a_country_without_sexes(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table ml.life_expectancy_predictions as select 'KEN' as country_code, 2020 as year, "
                    "62.1 as predicted, 'life-expectancy' as model_name, '3' as model_version, ? as scored_at",
                    [dt.datetime(2026, 12, 1, 10, 0)])
    at = render()
    both = chart_data(at, 2)[0]
    assert both[both["series"] == "predicted"][["year", "years"]].values.tolist() == [[2020, 62.1]]
    assert both[both["series"] == "actual"]["year"].tolist() == [2005, 2010, 2015]
    at.sidebar.selectbox[0].select("NGA").run()
    assert not at.exception
    assert any("no separate values for women and men" in i.value for i in at.info)
    assert any("has not scored this country" in i.value for i in at.info)


def test_no_data_yet_says_what_to_run(lakebox_env: dict[str, str]) -> None:
    at = render()
    assert "lakebox run who_gho" in at.info[0].value
