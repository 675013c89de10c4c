"""The four regression candidates against the last-value baseline, on features that dbt
built from the stand-in's data (real trends, irregular years)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from lakebox.pipelines.who_gho.generator import generate_gho
from lakebox.transform.dbt import run_dbt
from tests.pipelines.who_gho.conftest import (
    COUNTRIES,
    OBSERVATIONS,
    engine_warehouse,
    load_pages,
    page,
)

if TYPE_CHECKING:
    from lakebox.pipelines.who_gho.models import Evaluation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def features(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pd.DataFrame]:
    folder = tmp_path_factory.mktemp("who-models")
    gho = generate_gho(countries=190, years=20, seed=11)
    with engine_warehouse("duckdb", folder / "home", request) as (settings, wh):
        load_pages(wh, COUNTRIES, [page(gho.countries)], folder / "pages")
        load_pages(wh, OBSERVATIONS, [page(records) for records in gho.observations.values()], folder / "pages")
        run_dbt(settings, wh, ["path:models/who_gho"])
        yield wh.query_arrow("select * from ml.life_expectancy_features").to_pandas()


@pytest.fixture(scope="module")
def evaluation(features: pd.DataFrame) -> Evaluation:
    from lakebox.pipelines.who_gho.models import evaluate

    return evaluate(features, seed=0)


def test_every_candidate_beats_the_last_value_baseline(evaluation: Evaluation) -> None:
    from lakebox.pipelines.who_gho.models import BASELINE

    result = evaluation
    baseline = result.metrics[BASELINE]
    assert set(result.fitted) == {"linear_regression", "decision_tree", "random_forest", "hist_gradient_boosting"}
    assert result.folds == 5 and result.holdout_years == (2018, 2021)
    for name in result.fitted:
        assert result.metrics[name]["mae"] < baseline["mae"], (name, result.metrics[name], baseline)
        assert result.metrics[name]["cv_mae_mean"] < baseline["cv_mae_mean"], (name, result.metrics[name], baseline)
        assert result.metrics[name]["r2"] > baseline["r2"]
    assert result.metrics[result.best()]["mae"] < 0.8 * baseline["mae"]


def test_the_split_is_by_time_and_folds_never_look_back(features: pd.DataFrame) -> None:
    from lakebox.pipelines.who_gho.models import time_split, training_rows, year_folds

    train, holdout = time_split(training_rows(features))
    assert train["year"].max() < holdout["year"].min()
    for fit, test in year_folds(train):
        assert train.iloc[fit]["year"].max() < train.iloc[test]["year"].min()


def test_next_observation_follows_each_countrys_latest_one(features: pd.DataFrame, evaluation: Evaluation) -> None:
    from lakebox.pipelines.who_gho.models import predict_next

    result = evaluation
    predicted = predict_next(result.fitted[result.best()], features)
    latest = features.sort_values("year").groupby("country_code").last()
    assert len(predicted) == features["country_code"].nunique() == 190
    merged = predicted.set_index("country_code").join(latest.rename(columns=lambda c: f"{c}_latest"))
    assert (merged["year"] > merged["year_latest"]).all()
    every_five = merged[merged["years_since_prev_latest"] == 5]
    assert not every_five.empty and (every_five["predicted"].notna()).all()
    # life expectancy keeps rising in this data: the forecast is mostly above the last value
    assert (merged["predicted"] > merged["life_expectancy_latest"]).mean() > 0.8


def test_every_fitted_candidate_round_trips_through_skops(features: pd.DataFrame, evaluation: Evaluation) -> None:
    import skops.io as sio

    from lakebox.pipelines.who_gho.models import (
        FEATURES,
        SKOPS_TRUSTED_TYPES,
        next_observation_rows,
    )

    rows = next_observation_rows(features)[list(FEATURES)]
    for name, model in evaluation.fitted.items():
        blob = sio.dumps(model)
        assert set(sio.get_untrusted_types(data=blob)) <= set(SKOPS_TRUSTED_TYPES), name
        loaded = sio.loads(blob, trusted=list(SKOPS_TRUSTED_TYPES))
        assert (loaded.predict(rows) == model.predict(rows)).all(), name


def test_prediction_rows_carry_the_model_and_when_it_scored(features: pd.DataFrame, evaluation: Evaluation) -> None:
    import datetime as dt

    from lakebox.pipelines.who_gho.models import prediction_rows

    now = dt.datetime(2026, 12, 1, 12, 0)
    rows = prediction_rows(evaluation.fitted["linear_regression"], features, "life-expectancy", "3", now)
    assert list(rows.columns) == ["country_code", "year", "predicted", "model_name", "model_version", "scored_at"]
    assert len(rows) == 190 and rows["country_code"].is_unique
    assert set(rows["model_version"]) == {"3"} and set(rows["scored_at"]) == {now}


def test_the_lifecycle_spec_declares_these_candidates_features_and_trusted_types() -> None:
    from lakebox.pipelines.who_gho.model import SPEC
    from lakebox.pipelines.who_gho.models import FEATURES, SKOPS_TRUSTED_TYPES, candidates

    assert SPEC.features == FEATURES and SPEC.skops_trusted_types == SKOPS_TRUSTED_TYPES
    assert set(SPEC.candidates()) == set(candidates())
    assert SPEC.baseline_column == "prev_value" and SPEC.metric == "mae" and SPEC.cv_folds == 5
