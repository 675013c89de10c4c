"""The same lifecycle for regressors (the WHO models use it): MAE ranks, the last value is
the baseline, a lower MAE by the margin promotes, predictions carry no probability."""

from __future__ import annotations

import datetime as dt

import pytest

from lakebox.ml import MLModelSpec, drift, predict, train
from lakebox.ml.tracking import connect

# 60 countries x 30 years: life expectancy rising ~0.25 a year plus noise; the label is
# the next observation, so a model that learns the trend beats repeating the last value.
SERIES_SQL = """
create or replace table ml.series_features as
with base as (
  select c as country, y as year, 'R' || (c % 5) as region,
         50 + c % 20 + 0.25 * (y - 1990) + ((hash(c * 1000 + y) % 100) / 100.0 - 0.5) as value
  from range(60) t(c), range(1990, 2020) s(y)
)
select country, year, region, value, lag(value) over w as lag_1, lag(value, 2) over w as lag_2,
       lead(value) over w as next_value, make_timestamp(year, 1, 1, 0, 0, 0) as observed_at
from base window w as (partition by country order by year)
"""


def _models(kind: str):
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeRegressor

    def prep():
        return ColumnTransformer([("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
                                  ("num", "passthrough", ["value", "lag_1", "lag_2", "year"])])

    if kind == "mean":
        return {"mean": DummyRegressor()}
    return {"linear": Pipeline([("features", prep()), ("model", LinearRegression())]),
            "tree": Pipeline([("features", prep()), ("model", DecisionTreeRegressor(max_depth=6, random_state=0))])}


def _spec(kind: str) -> MLModelSpec:
    return MLModelSpec(
        name="life-expectancy-test", pipeline="who_test", task="regression",
        source_sql="select * from ml.series_features where lag_2 is not null",
        key_columns=("country", "year"), time_column="year", label_column="next_value",
        features=("region", "value", "lag_1", "lag_2", "year"), candidates=lambda: _models(kind),
        predictions_table="ml.series_predictions", metric="mae", margin=0.05, baseline_column="value",
        min_labelled=100, cv_folds=5,
    )


@pytest.mark.slow
def test_regressors_rank_by_mae_and_beat_the_last_value(settings, warehouse) -> None:
    warehouse.execute(SERIES_SQL)
    first = train(settings, warehouse, _spec("mean"))
    assert first.decision.decision == "champion"

    better = train(settings, warehouse, _spec("trend"))
    assert better.best.name == "linear" and better.decision.decision == "champion"
    m = better.best.metrics
    run = connect(settings).get_run(better.best.run_id).data.metrics
    assert m["mae"] < run["baseline_mae"] and m["r2"] > 0.9 and run["cv_folds"] == 5
    assert better.decision.champion_value > better.decision.value + 0.05  # lower MAE wins

    again = train(settings, warehouse, _spec("trend"))
    assert again.decision.decision == "challenger"

    scored = predict(settings, warehouse, _spec("trend"))
    assert scored.version == "2" and scored.rows_scored == 60 * 28
    cols = [r[0] for r in warehouse.query("select column_name from information_schema.columns "
                                          "where table_name = 'series_predictions' order by ordinal_position")]
    assert cols == ["country", "year", "predicted", "model_name", "model_version", "scored_at"]

    report = drift(settings, warehouse, _spec("trend"))  # a year column: the newest year is the window
    assert (report.window_start, report.window_end) == (dt.datetime(2019, 1, 1), dt.datetime(2019, 1, 1))
    assert "year" in report.drifted_features and "region" not in report.drifted_features
