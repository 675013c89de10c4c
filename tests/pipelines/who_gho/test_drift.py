"""Drift of the life-expectancy model compares like with like: the rows it forecasts (each
country's latest observation) now against the same rows when the champion was trained.
Features built by the real dbt models from the stand-in's data; the report is read back
from ml.drift_report. Nothing new flags nothing; a real shift flags that feature alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lakebox.ml import drift, train
from lakebox.pipelines.who_gho.generator import generate_gho
from lakebox.pipelines.who_gho.model import SPEC
from lakebox.settings import Settings
from lakebox.transform.dbt import run_dbt
from lakebox.warehouse import Warehouse, open_warehouse
from tests.pipelines.who_gho.conftest import COUNTRIES, OBSERVATIONS, load_pages, page

pytestmark = pytest.mark.slow

GHO = generate_gho(countries=80, years=12, seed=5)
Record = dict[str, Any]


def _one_candidate() -> dict[str, Any]:
    from lakebox.pipelines.who_gho.models import candidates

    return {"linear_regression": candidates()["linear_regression"]}


# the model does not matter to drift: one quick candidate, no cross-validation
LIGHT = dataclasses.replace(SPEC, candidates=_one_candidate, cv_folds=0)


@pytest.fixture
def home(lakebox_env: dict[str, str]) -> Iterator[tuple[Settings, Warehouse]]:
    settings = Settings.load()
    with open_warehouse(settings) as wh:
        load_pages(wh, COUNTRIES, [page(GHO.countries)], settings.home / "pages")
        yield settings, wh


def _observe(settings: Settings, wh: Warehouse, keep: Callable[[Record], bool],
             change: Callable[[Record], Record] = lambda r: r) -> None:
    """Load the stand-in's records that `keep` picks (changed by `change`), then build the marts."""
    pages = [page([change(dict(r)) for r in records if keep(r)]) for records in GHO.observations.values()]
    load_pages(wh, OBSERVATIONS, pages, Path(settings.home) / "pages")
    run_dbt(settings, wh, ["path:models/who_gho"])


def _report(wh: Warehouse) -> dict[str, tuple[str, float, bool]]:
    """The newest drift report: feature -> (method, statistic, drifted)."""
    rows = wh.query("select feature, method, statistic, drifted from ml.drift_report "
                    "where model_name = 'life-expectancy' and computed_at = "
                    "(select max(computed_at) from ml.drift_report)")
    return {feature: (method, statistic, drifted) for feature, method, statistic, drifted in rows}


def _plus_ten(record: Record) -> Record:
    """Life expectancy (not HALE) ten years higher, bounds and text with it."""
    if record["IndicatorCode"] == "WHOSIS_000001" and record["NumericValue"] is not None:
        record["NumericValue"] += 10
        record["Low"] += 10
        record["High"] += 10
        record["Value"] = f"{record['NumericValue']:.2f} [{record['Low']:.2f}-{record['High']:.2f}]"
    return record


def test_nothing_new_flags_nothing_and_plus_ten_years_flags_the_trend_alone(home: tuple[Settings, Warehouse]) -> None:
    settings, wh = home
    _observe(settings, wh, lambda r: r["TimeDim"] < 2021)
    trained = train(settings, wh, LIGHT)
    assert trained.decision is not None and trained.decision.decision == "champion"

    first = drift(settings, wh, LIGHT)
    again = drift(settings, wh, LIGHT)  # a re-run with nothing new

    assert not first.drifted and not again.drifted
    report = _report(wh)
    assert report == {"years_since_prev": ("ks", 0.0, False), "trend_slope": ("ks", 0.0, False),
                      "region": ("psi", 0.0, False)}
    assert wh.query("select count(*) from ml.drift_report where drifted") == [(0,)]

    _observe(settings, wh, lambda r: r["TimeDim"] == 2021, _plus_ten)  # the newest year, 10 years up
    shifted = drift(settings, wh, LIGHT)

    report = _report(wh)
    assert shifted.drifted and shifted.drifted_features == ["trend_slope"]
    assert {f for f, (_, _, drifted) in report.items() if drifted} == {"trend_slope"}
    assert report["trend_slope"][1] > 0.5  # most countries' trends moved past where they were
    assert report["region"][1] == 0.0  # the same countries await their next observation
    # the years forecast: 2022 for the yearly reporters, 2026 for the five-yearly ones
    assert wh.query("select distinct year(window_start), year(window_end) from ml.drift_report "
                    "where computed_at = (select max(computed_at) from ml.drift_report)") == [(2022, 2026)]


def test_a_new_reporting_gap_flags_years_since_prev_alone(home: tuple[Settings, Warehouse]) -> None:
    settings, wh = home
    _observe(settings, wh, lambda r: r["TimeDim"] < 2020)
    train(settings, wh, LIGHT)
    assert not drift(settings, wh, LIGHT).drifted

    _observe(settings, wh, lambda r: r["TimeDim"] == 2021)  # 2020 never published: a two-year gap
    result = drift(settings, wh, LIGHT)

    report = _report(wh)
    assert result.drifted_features == ["years_since_prev"]
    assert {f for f, (_, _, drifted) in report.items() if drifted} == {"years_since_prev"}
    assert report["years_since_prev"][1] > 0.5


def test_without_a_champion_drift_is_skipped_with_a_reason(home: tuple[Settings, Warehouse]) -> None:
    settings, wh = home
    _observe(settings, wh, lambda r: r["TimeDim"] < 2021)

    result = drift(settings, wh, LIGHT)

    assert not result.drifted and result.features == []
    assert "no champion yet" in result.message and "lakebox ml train who_gho" in result.message
    assert not wh.table_exists("ml", "drift_report")
