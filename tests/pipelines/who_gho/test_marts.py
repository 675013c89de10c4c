"""The who_gho dbt models on known inputs, on DuckDB and on PostgreSQL: latest published
version wins in staging, irregular years, sex gap, trends with ranks, lag features."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lakebox.pipelines.who_gho.generator import gho_record
from lakebox.settings import Settings
from lakebox.transform.dbt import run_dbt
from lakebox.warehouse import Warehouse
from tests.pipelines.who_gho.conftest import (
    COUNTRIES,
    OBSERVATIONS,
    country,
    engine_warehouse,
    load_pages,
    page,
)

pytestmark = pytest.mark.slow

PUBLISHED = dt.datetime(2024, 8, 1, 9, 30, tzinfo=dt.UTC)
LE, HALE = "WHOSIS_000001", "WHOSIS_000002"
KEN_YEARS, KEN_LE = [2000, 2005, 2010, 2015], [50.0, 53.0, 57.0, 60.0]  # every five years
NGA_YEARS, NGA_LE = [2010, 2011, 2012], [52.0, 52.5, 53.5]
ENGINES = ["duckdb", "postgres"]
_ids = iter(range(1, 10_000))


def rec(code: str, place: str, region: str | None, year: int, sex: str, value: float | None,
        published: dt.datetime = PUBLISHED, kind: str = "COUNTRY", id_: int | None = None) -> dict[str, Any]:
    record = gho_record(id_ or next(_ids), code, kind, place, region, year, sex, value, 2.0, published)
    if value is None:
        record.update(Value="No data")
    return record


def known_records() -> list[dict[str, Any]]:
    records = [rec(LE, "KEN", "AFR", y, "SEX_BTSX", v) for y, v in zip(KEN_YEARS, KEN_LE, strict=True)]
    records += [rec(LE, "KEN", "AFR", 2010, "SEX_MLE", 55.0), rec(LE, "KEN", "AFR", 2010, "SEX_FMLE", 59.0),
                rec(LE, "KEN", "AFR", 2015, "SEX_MLE", 58.0), rec(LE, "KEN", "AFR", 2015, "SEX_FMLE", 62.5),
                rec(HALE, "KEN", "AFR", 2015, "SEX_BTSX", 53.0), rec(HALE, "KEN", "AFR", 2015, "SEX_MLE", 51.0),
                rec(HALE, "KEN", "AFR", 2015, "SEX_FMLE", 54.0)]
    records += [rec(LE, "NGA", "AFR", y, "SEX_BTSX", v) for y, v in zip(NGA_YEARS, NGA_LE, strict=True)]
    records += [rec(LE, "NGA", "AFR", 2013, "SEX_BTSX", None),  # not published, with a reason
                rec(LE, "FRA", "EUR", 2019, "SEX_BTSX", 82.5),
                rec(LE, "AFR", None, 2015, "SEX_BTSX", 63.0, kind="REGION")]  # an aggregate: not a country
    return records


def build(settings: Settings, wh: Warehouse, folder: Path) -> None:
    load_pages(wh, COUNTRIES, [page([country("KEN", "Kenya", "AFR"), country("NGA", "Nigeria", "AFR"),
                                     country("FRA", "France", "EUR")])], folder)
    load_pages(wh, OBSERVATIONS, [page(known_records())], folder)
    run_dbt(settings, wh, ["path:models/who_gho"])


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Warehouse]]:
    """The models built once per engine from the known inputs; tests only read them."""
    folder = tmp_path_factory.mktemp(f"who-{request.param}")
    with engine_warehouse(request.param, folder / "home", request) as (settings, wh):
        build(settings, wh, folder / "pages")
        yield settings, wh


def test_country_year_mart_has_one_row_per_country_and_observed_year(built: tuple[Settings, Warehouse]) -> None:
    _, wh = built
    got = wh.query("select country_code, year, country_name, region, life_expectancy, life_expectancy_male, "
                   "life_expectancy_female, healthy_life_expectancy, life_expectancy_low, life_expectancy_high "
                   "from analytics.life_expectancy_by_country_year order by country_code, year")
    assert [(r[0], r[1]) for r in got] == [("FRA", 2019)] + [("KEN", y) for y in KEN_YEARS] + \
        [("NGA", y) for y in NGA_YEARS + [2013]]
    ken_2015 = next(r for r in got if r[:2] == ("KEN", 2015))
    assert ken_2015[2:] == ("Kenya", "AFR", 60.0, 58.0, 62.5, 53.0, 58.0, 62.0)
    ken_2000 = next(r for r in got if r[:2] == ("KEN", 2000))
    assert ken_2000[5:8] == (None, None, None)  # no sexes, no HALE that year
    assert next(r for r in got if r[:2] == ("NGA", 2013))[4] is None  # not published: a row without a value


def test_sex_gap_only_where_both_sexes_are_present(built: tuple[Settings, Warehouse]) -> None:
    _, wh = built
    got = wh.query("select country_code, year, sex_gap, healthy_sex_gap from analytics.life_expectancy_sex_gap "
                   "order by country_code, year")
    assert got == [("KEN", 2010, 4.0, None), ("KEN", 2015, 4.5, 3.0)]


def test_trends_use_the_observed_years_and_rank_within_region(built: tuple[Settings, Warehouse]) -> None:
    _, wh = built
    got = {r[0]: r[1:] for r in wh.query(
        "select country_code, first_year, last_year, observations, first_life_expectancy, last_life_expectancy, "
        "change_over_span, change_per_decade, rank_in_region from analytics.life_expectancy_trends")}
    ken_slope = np.polyfit(KEN_YEARS, KEN_LE, 1)[0]
    nga_slope = np.polyfit(NGA_YEARS, NGA_LE, 1)[0]
    assert got["KEN"][:6] == (2000, 2015, 4, 50.0, 60.0, 10.0)
    assert got["KEN"][6] == pytest.approx(ken_slope * 10)
    assert got["NGA"][6] == pytest.approx(nga_slope * 10)
    assert (got["NGA"][7], got["KEN"][7]) == (1, 2)  # NGA gains faster than KEN within AFR
    assert got["FRA"][2:] == (1, 82.5, 82.5, 0.0, None, 1)  # one observation: no slope


def test_features_come_from_earlier_observations_only(built: tuple[Settings, Warehouse]) -> None:
    _, wh = built
    got = {r[0]: r[1:] for r in wh.query(
        "select year, prev_year, prev_value, prev2_value, years_since_prev, trend_slope, n_previous, "
        "slope_to_date, next_year, next_value, years_to_next, region, life_expectancy "
        "from ml.life_expectancy_features where country_code = 'KEN'")}
    assert sorted(got) == KEN_YEARS
    assert got[2000][:6] == (None, None, None, None, None, 0)
    assert got[2005][:6] == (2000, 50.0, None, 5, None, 0 + 1)
    prev_year, prev, prev2, gap, slope, n, to_date, next_year, next_value, to_next, region, target = got[2010]
    assert (prev_year, prev, prev2, gap, n, next_year, next_value, to_next, region, target) == \
        (2005, 53.0, 50.0, 5, 2, 2015, 60.0, 5, "AFR", 57.0)
    assert slope == pytest.approx(np.polyfit([2000, 2005], [50.0, 53.0], 1)[0])
    assert to_date == pytest.approx(np.polyfit(KEN_YEARS[:3], KEN_LE[:3], 1)[0])
    assert got[2015][7:10] == (None, None, None)  # the latest observation: nothing follows yet
    nga = wh.query("select year from ml.life_expectancy_features where country_code = 'NGA' order by year")
    assert [r[0] for r in nga] == NGA_YEARS  # the unpublished 2013 value is no observation


@pytest.mark.parametrize("engine", ENGINES)
def test_revised_values_replace_old_ones_in_staging_and_raw_keeps_both(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with engine_warehouse(engine, tmp_path / "home", request) as (settings, wh):
        build(settings, wh, tmp_path / "pages")
        check_revisions(settings, wh, tmp_path)


def check_revisions(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    ken_2015 = wh.query("select id from raw.who_observations where spatial_dim = 'KEN' and time_dim = 2015 "
                        "and dim1 = 'SEX_BTSX' and indicator_code = 'WHOSIS_000001'")[0][0]
    revised = rec(LE, "KEN", "AFR", 2015, "SEX_BTSX", 61.0, PUBLISHED + dt.timedelta(days=200), id_=ken_2015)
    stale = rec(LE, "KEN", "AFR", 2015, "SEX_BTSX", 59.0, PUBLISHED - dt.timedelta(days=200), id_=ken_2015)
    load_pages(wh, OBSERVATIONS, [page([revised])], tmp_path / "v2")
    load_pages(wh, OBSERVATIONS, [page([stale])], tmp_path / "v3")  # an older version arriving late
    run_dbt(settings, wh, ["path:models/who_gho"])
    raw = wh.query("select numeric_value from raw.who_observations where id = ? order by date", [ken_2015])
    assert [r[0] for r in raw] == [59.0, 60.0, 61.0]
    staged = wh.query("select value, published_at from staging.stg_who_observations where country_code = 'KEN' "
                      "and year = 2015 and sex = 'both' and indicator = 'WHOSIS_000001'")
    assert len(staged) == 1 and staged[0][0] == 61.0
    assert wh.query("select life_expectancy from analytics.life_expectancy_by_country_year "
                    "where country_code = 'KEN' and year = 2015") == [(61.0,)]
