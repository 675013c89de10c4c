"""Regression candidates that predict a country's next life-expectancy observation.

Input is `ml.life_expectancy_features` (one row per country and observed year, lags from
earlier observations only). Every candidate predicts the *change* since the previous
observation and adds it to that value (`FromLastValue`): life expectancy moves slowly
around a country's own level, so a tree that had to learn levels could not extrapolate,
while the change is what the trend, the gap in years and the region explain. The baseline
to beat is the last value itself.

Evaluation is time-based: the newest years are the holdout, and cross-validation splits
the training years in order (TimeSeriesSplit over years, 5 folds where there are enough),
so a model is never scored on a year before the ones it learned from.

scikit-learn is imported at module level: this module is only imported by the ML stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor

from lakebox.pipelines.who_gho.countries import REGIONS

NUMERIC: Final = ("prev_value", "prev2_value", "years_since_prev", "trend_slope", "n_previous")
CATEGORICAL: Final = ("region",)
FEATURES: Final = NUMERIC + CATEGORICAL
TARGET: Final = "life_expectancy"
BASELINE: Final = "last_value"
CV_FOLDS: Final = 5
HOLDOUT_SHARE: Final = 0.2  # of the observed years, newest first
# What MLflow's skops flavour must be told to trust to load any candidate back.
SKOPS_TRUSTED_TYPES: Final = (
    "lakebox.pipelines.who_gho.models.FromLastValue",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class FromLastValue(RegressorMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """Fits `model` to the change since `prev_value`; predicts prev_value + that change."""

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def fit(self, X: pd.DataFrame, y: Any) -> FromLastValue:
        with _one_thread():
            self.model_ = clone(self.model).fit(X, np.asarray(y) - X["prev_value"].to_numpy())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        with _one_thread():
            return np.asarray(X["prev_value"].to_numpy() + self.model_.predict(X), dtype=float)


def _one_thread() -> Any:
    """OpenMP on one thread: on a few thousand rows, histogram boosting's threads cost more
    than they save, and on a busy machine they cost 100x (measured: 0.4 s vs 42 s)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def candidates(seed: int = 0) -> dict[str, FromLastValue]:
    """The four candidates, unfitted; names are what MLflow runs and the registry see."""
    regressors: dict[str, Any] = {
        "linear_regression": LinearRegression(),
        "decision_tree": DecisionTreeRegressor(max_depth=6, min_samples_leaf=20, random_state=seed),
        # sized for the 20 s whole-pipeline target (each is fitted 6 times: 5 folds and the
        # final fit); twice the trees or iterations moved the holdout MAE by under 0.01 years
        "random_forest": RandomForestRegressor(n_estimators=30, min_samples_leaf=5, max_features=0.6,
                                               n_jobs=1, random_state=seed),
        "hist_gradient_boosting": HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1,
                                                                min_samples_leaf=20, random_state=seed),
    }
    return {name: FromLastValue(Pipeline([("columns", _columns()), ("regressor", regressor)]))
            for name, regressor in regressors.items()}


def _columns() -> ColumnTransformer:
    regions = [sorted(REGIONS)]
    return ColumnTransformer(
        [("region", OneHotEncoder(categories=regions, handle_unknown="ignore", sparse_output=False), list(CATEGORICAL))],
        remainder="passthrough", verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def training_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Observations with a previous one to start from, in time order. A missing second lag
    is the first lag (no change seen yet) and a missing trend is flat: a country's first
    rows still teach the models something."""
    rows = features[features["prev_value"].notna() & features[TARGET].notna()].copy()
    rows["prev2_value"] = rows["prev2_value"].fillna(rows["prev_value"])
    rows["trend_slope"] = rows["trend_slope"].fillna(0.0)
    rows["years_since_prev"] = rows["years_since_prev"].astype(float)
    rows["n_previous"] = rows["n_previous"].astype(float)
    return rows.sort_values(["year", "country_code"], kind="stable").reset_index(drop=True)


def next_observation_rows(features: pd.DataFrame) -> pd.DataFrame:
    """One row per country to predict its next observation from: its latest observation is
    the last value, the trend to date is the trend, and the next one is expected after the
    country's latest gap between observations (1 year when there was only one)."""
    latest = features[features[TARGET].notna()].sort_values("year").groupby("country_code", as_index=False).last()
    gap = latest["years_since_prev"].fillna(1).astype(float)
    return pd.DataFrame({
        "country_code": latest["country_code"],
        "region": latest["region"],
        "year": (latest["year"] + gap).astype(int),
        "prev_value": latest[TARGET],
        "prev2_value": latest["prev_value"].fillna(latest[TARGET]),
        "years_since_prev": gap,
        "trend_slope": latest["slope_to_date"].fillna(0.0),
        "n_previous": (latest["n_previous"] + 1).astype(float),
    })


def time_split(rows: pd.DataFrame, holdout_share: float = HOLDOUT_SHARE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the holdout is the newest `holdout_share` of the observed years."""
    years = np.sort(rows["year"].unique())
    if len(years) < 3:
        raise ValueError(f"need observations in at least 3 years to split by time, got {len(years)}")
    first_holdout = years[-max(1, round(len(years) * holdout_share))]
    return rows[rows["year"] < first_holdout], rows[rows["year"] >= first_holdout]


def year_folds(train: pd.DataFrame, folds: int = CV_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """TimeSeriesSplit over the training years (not rows, so one year is never on both
    sides): up to `folds` folds, fewer when there are fewer years."""
    years = np.sort(train["year"].unique())
    n = min(folds, len(years) - 1)
    if n < 2:
        return []
    out = []
    for fit_years, test_years in TimeSeriesSplit(n_splits=n).split(years):
        out.append((np.flatnonzero(train["year"].isin(years[fit_years]).to_numpy()),
                    np.flatnonzero(train["year"].isin(years[test_years]).to_numpy())))
    return out


def scores(actual: Any, predicted: Any) -> dict[str, float]:
    return {"mae": float(mean_absolute_error(actual, predicted)),
            "mse": float(mean_squared_error(actual, predicted)),
            "r2": float(r2_score(actual, predicted))}


@dataclass
class Evaluation:
    """Holdout and cross-validation metrics per candidate and for the last-value baseline;
    `fitted` holds each candidate refitted on every training row."""

    metrics: dict[str, dict[str, float]]
    fitted: dict[str, FromLastValue]
    train_rows: int
    holdout_rows: int
    folds: int
    holdout_years: tuple[int, int]
    params: dict[str, Any] = field(default_factory=dict)

    def best(self) -> str:
        """The candidate with the lowest holdout MAE."""
        return min(self.fitted, key=lambda name: self.metrics[name]["mae"])


def evaluate(features: pd.DataFrame, seed: int = 0, folds: int = CV_FOLDS) -> Evaluation:
    """Cross-validate, fit and score every candidate and the baseline (see module doc)."""
    rows = training_rows(features)
    train, holdout = time_split(rows)
    cv = year_folds(train, folds)
    metrics: dict[str, dict[str, float]] = {}
    fitted: dict[str, FromLastValue] = {}
    x_train, x_holdout = train[list(FEATURES)], holdout[list(FEATURES)]
    metrics[BASELINE] = {**scores(holdout[TARGET], holdout["prev_value"]),
                         **_cv_scores(train, cv, lambda fit, test: test["prev_value"].to_numpy())}
    for name, model in candidates(seed).items():
        def fold_predict(fit: pd.DataFrame, test: pd.DataFrame, model: FromLastValue = model) -> np.ndarray:
            fitted_here: FromLastValue = clone(model).fit(fit[list(FEATURES)], fit[TARGET])
            return fitted_here.predict(test[list(FEATURES)])

        cv_metrics = _cv_scores(train, cv, fold_predict)
        fitted[name] = clone(model).fit(x_train, train[TARGET])
        metrics[name] = {**scores(holdout[TARGET], fitted[name].predict(x_holdout)), **cv_metrics}
    return Evaluation(metrics, fitted, len(train), len(holdout), len(cv),
                      (int(holdout["year"].min()), int(holdout["year"].max())), {"seed": seed, "features": FEATURES})


def _cv_scores(train: pd.DataFrame, cv: list[tuple[np.ndarray, np.ndarray]], predict: Any) -> dict[str, float]:
    if not cv:
        return {}
    maes = []
    for fit_rows, test_rows in cv:
        fit, test = train.iloc[fit_rows], train.iloc[test_rows]
        maes.append(mean_absolute_error(test[TARGET], predict(fit, test)))
    return {"cv_mae_mean": float(np.mean(maes)), "cv_mae_std": float(np.std(maes))}


def predict_next(model: FromLastValue, features: pd.DataFrame) -> pd.DataFrame:
    """Each country's next observation as `model` predicts it: country_code, year, predicted."""
    rows = next_observation_rows(features)
    return pd.DataFrame({"country_code": rows["country_code"], "year": rows["year"],
                         "predicted": model.predict(rows[list(FEATURES)])})


def prediction_rows(
    model: FromLastValue, features: pd.DataFrame, model_name: str, model_version: str, scored_at: Any
) -> pd.DataFrame:
    """The rows of ml.life_expectancy_predictions that `model` (a registered version) gives:
    country_code, year, predicted, model_name, model_version, scored_at."""
    return predict_next(model, features).assign(model_name=model_name, model_version=str(model_version),
                                                scored_at=scored_at)
