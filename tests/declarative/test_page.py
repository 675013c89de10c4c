"""A declarative pipeline's page: its data functions over a real DuckDB warehouse and a real
MLflow registry, and the page rendered by the dashboard app (Streamlit's AppTest) for the
pipeline its url path names. The stand-ins are in page_setup.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lakebox.dashboard import APP
from lakebox.dashboard.data import WarehouseRef
from lakebox.dashboard.layout import SHOWN_PAGE
from lakebox.declarative import page_data
from lakebox.declarative.config import load_config
from lakebox.errors import ConfigError
from lakebox.pipelines import PATH_ENV, dashboard_pages
from tests.conftest import _LAKEBOX_VARS
from tests.declarative.page_setup import (
    AIR,
    BASELINE_MAE,
    CHAMPION_MAE,
    DAYS,
    EMPTY,
    MODEL,
    RIVER,
    record_ops,
    register_champion,
    write_pipelines,
)

PAGE = Path(page_data.__file__).with_name("page.py")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with both pipelines on LAKEBOX_PIPELINES_PATH, the warehouse and the registry."""
    from lakebox.settings import Settings

    root = tmp_path_factory.mktemp("declarative-page")
    with pytest.MonkeyPatch.context() as env:
        for name in _LAKEBOX_VARS:
            env.delenv(name, raising=False)
        env.setenv("LAKEBOX_HOME", str(root / "home"))
        env.setenv(PATH_ENV, str(write_pipelines(root)))
        env.chdir(root)
        settings = Settings.load()
        record_ops(settings)
        register_champion(settings, root)
        yield root / "home"


@pytest.fixture
def wh(home: Path) -> WarehouseRef:
    from lakebox.dashboard.data import configured_warehouse

    st.cache_data.clear()
    return configured_warehouse()


def test_the_page_reads_what_the_folder_declares(home: Path) -> None:
    air = page_data.declared(AIR)
    assert air.marts == ("analytics.city_summary", "analytics.pm25_daily", "analytics.pm25_weekly")
    assert air.sources == ("air_quality_readings", "air_quality_stations")
    assert [m.name for m in air.models] == [MODEL]
    assert air.description == "Daily PM2.5 readings per city" and air.title == "Air Quality"
    assert air.models == load_config(_folder(AIR)).models
    river = page_data.declared(RIVER)
    assert (river.marts, river.sources, river.models) == (("analytics.level_hourly",), ("river_levels_levels",), ())


def _folder(name: str) -> Path:
    from lakebox.pipelines import get_spec

    return Path(get_spec(name).folder)


def test_every_declarative_pipeline_gets_a_page_at_its_name_from_one_file(home: Path) -> None:
    river = _folder(RIVER)
    assert (river / "pipeline.toml").is_file() and not (river / "__init__.py").exists()  # found as a user writes it
    pages = {p.url_path: p for p in dashboard_pages()}
    assert pages[AIR].path == pages[RIVER].path == PAGE
    assert (pages[AIR].title, pages[RIVER].title) == ("Air Quality", "River Levels")
    assert pages["retail"].path != PAGE and pages["retail"].default  # the bundled pages as they were


def test_marts_their_time_column_and_trend(wh: WarehouseRef) -> None:
    air = page_data.declared(AIR)
    assert page_data.built_marts(wh, air.marts) == ["analytics.city_summary", "analytics.pm25_daily"]

    daily = page_data.table_shape(wh, "analytics.pm25_daily")
    assert daily.time == "day" and daily.dates == ("day",)
    assert daily.numbers == ("pm25", "readings") and daily.texts == ("city",)
    assert page_data.mart_count(wh, "analytics.pm25_daily") == DAYS * 2
    assert page_data.series_column(wh, "analytics.pm25_daily", daily) == "city"
    trend = page_data.mart_trend(wh, "analytics.pm25_daily", "day", "pm25", "city")
    assert len(trend) == DAYS * 2 and trend["day"].is_monotonic_increasing
    third = trend[trend["day"] == pd.Timestamp("2026-01-03")].set_index("city")["pm25"].to_dict()
    assert third == {"Lisbon": 3.0, "Porto": 6.0}
    pooled = page_data.mart_trend(wh, "analytics.pm25_daily", "day", "pm25")  # no series: the mean of the cities
    assert pooled.set_index("day")["pm25"][pd.Timestamp("2026-01-10")] == 15.0
    newest = page_data.mart_trend(wh, "analytics.pm25_daily", "day", "pm25", limit=5)
    assert list(newest["day"].dt.day) == [26, 27, 28, 29, 30]  # the newest points, oldest first
    rows = page_data.mart_rows(wh, "analytics.pm25_daily", daily, limit=4)
    assert list(rows["day"].dt.day) == [30, 30, 29, 29] and rows["pm25"].dtype == "float64"

    summary = page_data.table_shape(wh, "analytics.city_summary")
    assert summary.time is None and summary.numbers == ("mean_pm25",)
    assert page_data.series_column(wh, "analytics.city_summary", summary) == "city"

    hourly = page_data.table_shape(wh, "analytics.level_hourly")
    assert hourly.time == "measured_at" and hourly.timestamps == ("measured_at",)
    assert page_data.series_column(wh, "analytics.level_hourly", hourly) is None


def test_runs_checks_and_quarantine_are_the_pipelines_own(wh: WarehouseRef) -> None:
    air = page_data.declared(AIR)
    runs = page_data.pipeline_runs(wh, AIR)
    assert list(runs["run_id"]) == ["run-air-2", "run-air-1"] and list(runs["status"]) == ["partial", "success"]
    checks = page_data.quality_checks(wh, AIR, air.sources)
    assert list(zip(checks["source"], checks["check_name"], checks["failed"], strict=True)) == [
        ("air_quality_readings", "min", 1), ("air_quality_readings", "required", 0),
        ("air_quality_stations", "unique", 0)]  # failing first; orders' checks are not here
    assert list(checks["resource"]) == ["readings", "readings", "stations"]
    items = page_data.open_items(wh, AIR)
    assert list(items["item"]) == ["GET /v1/readings page 3"]
    assert items["failed_rules"].iloc[0] == "min(pm25): 2 rows — pm25 < 0"
    assert page_data.open_items(wh, RIVER).empty and page_data.pipeline_runs(wh, RIVER)["run_id"].tolist() == [
        "run-river-1"]


def test_the_champion_comes_from_the_registry(wh: WarehouseRef) -> None:
    found = page_data.champion(wh, MODEL)
    assert found is not None
    assert found.version == "2"
    assert found.metrics == {"mae": CHAMPION_MAE, "baseline_mae": BASELINE_MAE, "r2": 0.75}
    assert found.registered_at is not None
    assert page_data.champion(wh, "never-trained") is None
    model = page_data.declared(AIR).models[0]
    predictions = page_data.latest_predictions(wh, model, limit=3)
    assert predictions is not None
    assert list(predictions["predicted"]) == [58.5, 57.0, 55.5]  # the newest scored first
    assert list(predictions.columns) == ["day", "city", "predicted", "model_name", "model_version", "scored_at"]


def test_without_an_mlflow_store_there_is_no_champion_and_none_is_created(
        wh: WarehouseRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "absent" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    assert page_data.champion(wh, MODEL) is None
    assert not store.parent.exists()


def test_a_page_with_no_pipeline_says_how_to_open_it() -> None:
    with pytest.raises(ConfigError, match="open it at /<pipeline>"):
        page_data.check_page("")


def _render(page: Path = PAGE) -> AppTest:
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page(str(page)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_app_renders_the_page_of_the_pipeline_its_url_names(home: Path) -> None:
    at = _render()  # the first page registered from this file: /air_quality
    assert at.title[0].value == "Air Quality"  # the spec's page title, as in the menu
    assert at.caption[0].value == "Daily PM2.5 readings per city"
    shown = {m.label: m.value for m in at.metric}
    assert shown == {"Latest run": "partial", "Marts built": "2 of 3", "Failing checks": "1",
                     "Open quarantine items": "1", "Champion version": "2", "Champion MAE": "1.25",
                     "Baseline MAE": "2.5", "R²": "0.75"}
    assert [s.value for s in at.subheader] == ["City summary", "Pm25 daily", "Pm25 weekly", "Model pm25-forecast",
                                               "Runs", "Quality checks", "Open quarantine items"]
    assert any("`analytics.pm25_weekly` is not built yet" in i.value for i in at.info)

    charts = at.get("vega_lite_chart")
    assert len(charts) == 1  # pm25_daily; city_summary has no date
    spec = json.loads(charts[0].proto.spec)
    assert spec["encoding"]["x"]["field"] == "day" and spec["encoding"]["color"]["field"] == "city"
    measure = next(s for s in at.selectbox if s.label == "Measure")
    assert measure.options == ["Pm25", "Readings"]

    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    daily = tables[("Day", "City", "Pm25", "Readings")]
    assert len(daily) == DAYS * 2 and daily["Day"].iloc[0] == pd.Timestamp("2026-01-30")
    assert ("City", "Mean pm25", "Measurement note") in tables
    predictions = tables[("Day", "City", "Predicted", "Scored at")]  # the model and version are in the caption
    assert len(predictions) == 40
    assert any(c.value == "The newest 40 predictions, by version 2." for c in at.caption)
    runs = tables[("Run", "Status", "Started", "Seconds", "Rows in", "Rows out")]
    assert list(runs["Run"]) == ["run-air-2", "run-air-1"]
    assert any(m.value == "**run\\-air\\-2** (partial): air\\_quality: 1 input item\\(s\\) failed the quality gate "
               "and were quarantined" for m in at.markdown), [m.value for m in at.markdown]
    checks = tables[("Resource", "Rule", "Failed", "Runs", "Failing rows", "Last checked")]
    assert list(zip(checks["Resource"], checks["Rule"], checks["Failed"], strict=True)) == [
        ("readings", "min(pm25)", 1), ("readings", "required(city)", 0), ("stations", "unique(station_id)", 0)]
    item = next(m.value for m in at.markdown if "readings page 3" in m.value)
    assert item.startswith("**GET /v1/readings page 3**, opened ") and item.endswith("min\\(pm25\\): 2 rows — pm25 \\< 0")
    assert all("_" not in "".join(columns) for columns in tables)  # human column names
    assert all(d.proto.placeholder == "" for d in at.dataframe)

    measure.set_value("readings").run()
    assert json.loads(at.get("vega_lite_chart")[0].proto.spec)["encoding"]["y"]["field"] == "readings"


def _page_of(pipeline: str) -> AppTest:
    """The page file on its own, run as the app runs it for /<pipeline>."""
    st.cache_data.clear()
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state[SHOWN_PAGE] = pipeline
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_one_file_renders_each_pipeline_it_is_opened_for(home: Path) -> None:
    river = _page_of(RIVER)
    assert river.title[0].value == "River Levels"
    assert {m.label: m.value for m in river.metric} == {"Latest run": "success", "Marts built": "1 of 1",
                                                         "Failing checks": "0", "Open quarantine items": "0"}
    spec = json.loads(river.get("vega_lite_chart")[0].proto.spec)
    assert spec["encoding"]["x"]["field"] == "measured_at" and "color" not in spec["encoding"]
    assert any("No quality results yet for river_levels_levels" in i.value for i in river.info)

    new = _page_of(EMPTY)
    assert new.title[0].value == "New Feed"
    assert [i.value for i in new.info] == ["No data yet — run `lakebox run new_feed`, then press 'Refresh data'."]
    assert not new.metric and not new.dataframe


def test_a_broken_mlflow_store_is_a_warning_in_its_model_and_the_rest_still_reads(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "mlflow.db"
    broken.write_bytes(b"not a database at all " * 100)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{broken}")
    at = _page_of(AIR)
    assert [w.value for w in at.warning if "MLflow store" in w.value], [w.value for w in at.warning]
    shown = {m.label: m.value for m in at.metric}
    assert "Champion version" not in shown and shown["Latest run"] == "partial"
    assert any(tuple(d.value.columns) == ("Day", "City", "Predicted", "Scored at") for d in at.dataframe)
    assert at.subheader[-1].value == "Open quarantine items"


def test_the_bundled_pages_still_open_as_before(home: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Retail"  # the default page; its warehouse has no retail marts
    assert any("No retail data yet" in i.value for i in at.info)


@pytest.mark.postgres
def test_the_data_functions_read_a_postgresql_warehouse_alike(home: Path, pg_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from lakebox.dashboard.data import configured_warehouse
    from tests.dashboard.conftest import copy_to_postgres

    copy_to_postgres(home / "warehouse.duckdb", pg_url)  # analytics.* and ops.*, by COPY
    monkeypatch.setenv("LAKEBOX_WAREHOUSE", pg_url)
    st.cache_data.clear()
    wh = configured_warehouse()
    assert wh.kind == "postgres"
    air = page_data.declared(AIR)
    assert page_data.built_marts(wh, air.marts) == ["analytics.city_summary", "analytics.pm25_daily"]
    daily = page_data.table_shape(wh, "analytics.pm25_daily")
    assert (daily.time, daily.dates, daily.numbers, daily.texts) == ("day", ("day",), ("pm25", "readings"), ("city",))
    hourly = page_data.table_shape(wh, "analytics.level_hourly")
    assert (hourly.time, hourly.timestamps, hourly.numbers) == ("measured_at", ("measured_at",), ("level_cm",))
    trend = page_data.mart_trend(wh, "analytics.pm25_daily", "day", "pm25",
                                 page_data.series_column(wh, "analytics.pm25_daily", daily))
    third = trend[trend["day"] == pd.Timestamp("2026-01-03")].set_index("city")["pm25"].to_dict()
    assert third == {"Lisbon": 3.0, "Porto": 6.0}
    assert list(page_data.mart_rows(wh, "analytics.pm25_daily", daily, limit=2)["day"].dt.day) == [30, 30]
    assert list(page_data.pipeline_runs(wh, AIR)["run_id"]) == ["run-air-2", "run-air-1"]
    assert list(page_data.quality_checks(wh, AIR, air.sources)["resource"]) == ["readings", "readings", "stations"]
    assert list(page_data.open_items(wh, AIR)["item"]) == ["GET /v1/readings page 3"]
