"""A warehouse holding `ml.commit_features` built from a real project's history (3,466
commits of conventional-changelog/commitlint), shaped as the github_commits dbt model
builds it, and an MLflow SQLite store in the test's home."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakebox.bench.ml import HISTORY, commit_features_sql
from lakebox.ml import MLModelSpec, specs
from lakebox.pipelines.who_gho.model import SPEC as WHO_SPEC
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse, open_warehouse


def build_commit_features(warehouse: Warehouse, path: Path = HISTORY) -> int:
    warehouse.execute(commit_features_sql(path))
    return warehouse.query("select count(*) from ml.commit_features")[0][0]


@pytest.fixture
def history() -> Path:
    if not HISTORY.is_file():
        pytest.skip(f"the recorded commit history is not at {HISTORY} (the shared fixtures folder)")
    return HISTORY


@pytest.fixture
def settings(lakebox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("MLFLOW_TRACKING_URI", "LAKEBOX_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    return Settings.load()


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    with open_warehouse(settings) as wh:
        yield wh


@pytest.fixture
def commit_warehouse(warehouse: Warehouse, history: Path) -> Warehouse:
    assert build_commit_features(warehouse, history) == 3466
    return warehouse


# ml.life_expectancy_features as the who_gho dbt model shapes it: 60 countries observed
# yearly 2000-2019, life expectancy rising ~0.3 a year plus noise; the label is the next value
WHO_FEATURES_SQL = """
create schema if not exists ml;
create or replace table ml.life_expectancy_features as
with base as (
  select 'C' || lpad(cast(c as varchar), 3, '0') as country_code, y as year,
         ['AFR', 'AMR', 'SEAR', 'EUR', 'EMR', 'WPR'][c % 6 + 1] as region,
         55 + c % 20 + 0.3 * (y - 2000) + ((hash(c * 1000 + y) % 100) / 100.0 - 0.5) as life_expectancy
  from range(60) t(c), range(2000, 2020) s(y)
)
select country_code, year, region, life_expectancy,
       lag(life_expectancy) over w as prev_value,
       case when lead(year) over w is not null then 1 end as years_to_next,
       case when lag(year) over w is not null then 1 end as years_since_prev,
       (life_expectancy - first_value(life_expectancy) over w) / nullif(row_number() over w - 1, 0) as slope_to_date,
       row_number() over w - 1 as n_previous,
       lead(life_expectancy) over w as next_value
from base window w as (partition by country_code order by year)
"""


def _who_linear() -> dict[str, object]:
    from lakebox.pipelines.who_gho.models import candidates as who_candidates

    return {"linear_regression": who_candidates()["linear_regression"]}


def _who_mean() -> dict[str, object]:
    from sklearn.dummy import DummyRegressor

    return {"mean": DummyRegressor()}  # the mean of every label: far worse than the last value


WHO_GOOD = dataclasses.replace(WHO_SPEC, candidates=_who_linear, cv_folds=0)  # one quick candidate
WHO_BAD = dataclasses.replace(WHO_SPEC, candidates=_who_mean, cv_folds=0)


@pytest.fixture
def who_warehouse(warehouse: Warehouse) -> Warehouse:
    warehouse.execute(WHO_FEATURES_SQL)
    return warehouse


@pytest.fixture
def only_model(monkeypatch: pytest.MonkeyPatch) -> Callable[[MLModelSpec], str]:
    """Register a spec as the only model registered at run time (for the `lakebox ml`
    commands); returns its pipeline."""
    monkeypatch.setattr(specs, "_registered", {})

    def register(spec: MLModelSpec) -> str:
        specs.register_spec(spec)
        return spec.pipeline

    return register


@pytest.fixture
def who_pipeline(only_model: Callable[[MLModelSpec], str]) -> str:
    """WHO_GOOD as the only model of pipeline who_fast."""
    return only_model(dataclasses.replace(WHO_GOOD, pipeline="who_fast"))
