"""The life-expectancy model, declared for the shared ML lifecycle (`lakebox.ml`).

Each row of `ml.life_expectancy_features` becomes one forecast: from a country's
observation at `year` (its value, the one before, its trend to date) to its *next*
observation, `years_since_prev` years later. The row's time and key is the year forecast,
so the time-based holdout is the newest forecast years, and a country's latest observation
(no next one yet) is scored one usual gap ahead: that is its row in
`ml.life_expectancy_predictions`. The candidates and the last-value wrapper are in
`models.py` (imported only when training).
"""

from __future__ import annotations

from typing import Any

from lakebox.ml import MLModelSpec
from lakebox.pipelines.who_gho.online import RAW_INPUTS

SOURCE_SQL = """
select
    country_code,
    year + coalesce(years_to_next, years_since_prev, 1) as year,
    region,
    life_expectancy as prev_value,
    coalesce(prev_value, life_expectancy) as prev2_value,
    cast(coalesce(years_to_next, years_since_prev, 1) as double precision) as years_since_prev,
    coalesce(slope_to_date, 0) as trend_slope,
    cast(n_previous + 1 as double precision) as n_previous,
    next_value
from ml.life_expectancy_features
"""


def _candidates() -> dict[str, Any]:
    from lakebox.pipelines.who_gho.models import candidates

    return dict(candidates())


SPEC = MLModelSpec(
    name="life-expectancy",
    pipeline="who_gho",
    task="regression",
    source_sql=SOURCE_SQL,
    key_columns=("country_code", "year"),
    time_column="year",
    label_column="next_value",
    features=("prev_value", "prev2_value", "years_since_prev", "trend_slope", "n_previous", "region"),
    candidates=_candidates,
    predictions_table="ml.life_expectancy_predictions",
    metric="mae",
    margin=0.01,  # years: a new version must forecast at least this much closer on the same holdout
    experiment="life_expectancy",
    baseline_column="prev_value",
    min_labelled=200,
    cv_folds=5,
    retrain_after=200,
    # the level rises by design and n_previous only grows: drift is watched on the rest
    drift_features=("years_since_prev", "trend_slope", "region"),
    # the rows scored (each country's latest observation) against the same rows when the
    # champion was trained, not against the labelled history they differ from in kind
    drift_population="unlabelled",
    # skops's import walks every loaded module for ufunc names: after dbt's 3,800 modules,
    # 1.6 s of CPU per process that saves or loads a model (2 s of the run's 20 s budget);
    # the models are lakebox's own, loaded only from its own registry. skops_trusted_types
    # stay declared for a switch back to "skops".
    serialization="cloudpickle",
    skops_trusted_types=(
        "lakebox.pipelines.who_gho.models.FromLastValue",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ),
    required_tables=("ml.life_expectancy_features",),
    raw_inputs=RAW_INPUTS,  # online: a country, a year and a sex; the observations looked up (online.py)
)
