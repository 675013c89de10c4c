"""What a pipeline declares about one of its models; the lifecycle (train, register,
predict, drift) does the rest the same way for every model.

No scikit-learn here: `candidates` is a factory, called only when training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa

Task = Literal["classification", "regression"]

# metric -> greater is better; the champion rule reads the direction from here
METRICS: dict[str, bool] = {
    "f1_macro": True, "accuracy": True, "precision_macro": True, "recall_macro": True,
    "mae": False, "mse": False, "r2": True,
}


class RawRowsRejected(ValueError):
    """Raw rows the model cannot be given features for (an unknown country, a value it does
    not model): the message names the column and values, and what is accepted (a 400)."""


def as_read(lookup: pa.Table) -> pa.Table:
    """A lookup used as it was read (RawInputs.prepare's default)."""
    return lookup


@dataclass(frozen=True)
class RawInputs:
    """What a caller of the online endpoint sends instead of the features: the columns of the
    table the pipeline's features are built from (e.g. `staging.stg_commits`), and how those
    rows become the rows `source_sql` returns (keys, time and every feature).

    `lookup_sql` reads, from the warehouse, what `features` needs beside the caller's rows
    (an author's earlier commits, a country's observations); the server reads it when it
    starts and again every minute, never per request, and hands it to `prepare` (an index
    built once, off the request path). `features(raw, prepared)` is vectorized (Arrow compute,
    DuckDB) and raises RawRowsRejected for rows it cannot take.
    """

    columns: tuple[tuple[str, str], ...]  # (name, type as MLflow names it: string, long, double, datetime, ...)
    lookup_sql: str
    features: Callable[[pa.Table, Any], pa.Table]
    prepare: Callable[[pa.Table], Any] = as_read


@dataclass(frozen=True)
class MLModelSpec:
    """One model of one pipeline.

    `source_sql` selects, from the warehouse, one row per key with the key columns, the
    time column, every feature and the label (null where unknown); rows with a label
    train, every row is scored. `candidates()` returns fresh, unfitted scikit-learn
    estimators by name (pipelines that take a DataFrame of `features`); the best by
    `metric` on the time-based holdout is registered under `name`.
    """

    name: str  # registry model, e.g. "commit-classifier"
    pipeline: str  # the pipeline that owns it, e.g. "github_commits"
    task: Task
    source_sql: str
    key_columns: tuple[str, ...]
    time_column: str
    label_column: str
    features: tuple[str, ...]
    candidates: Callable[[], Mapping[str, Any]]
    predictions_table: str  # e.g. "ml.commit_predictions"
    metric: str = "f1_macro"
    margin: float = 0.01  # a new version must beat the champion by this much on `metric`
    experiment: str = ""  # MLflow experiment; default: the model's name
    predicted_column: str = "predicted"
    text_features: tuple[str, ...] = ()  # drift bins them by token, not by value
    # the naive baseline (metrics.baseline): classifiers, the training rows' majority class;
    # regressors, this column (e.g. the last observed value), else the previous row's label
    baseline_column: str | None = None
    # a version that does not beat that baseline by `margin` on the holdout gets no alias
    # (decision `rejected`, the reason in ml.model_decisions): on for declared models
    beat_baseline: bool = False
    min_labelled: int = 200  # fewer labelled rows: training is skipped, not failed
    holdout_fraction: float = 0.2  # the newest labelled rows, by time
    cv_folds: int = 0  # time-series cross-validation folds on the training part (0: none)
    retrain_after: int = 200  # new labelled rows since the champion's training that make training due
    drift_features: tuple[str, ...] = ()  # default: every feature (leave out counters that only grow)
    # What drift compares (ml/drift.py). "window": the newest window against the rows before
    # it (rows of one kind arriving over time: commits). "unlabelled": the rows awaiting a
    # label, the ones the model forecasts, against the same rows as they stood when the
    # champion was trained (recorded then): when those rows differ in kind from the
    # labelled history (each country's latest observation, forecast one gap ahead).
    drift_population: Literal["window", "unlabelled"] = "window"
    drift_window_days: int = 30
    drift_min_rows: int = 30
    # "skops" (types checked against an allow-list on load) or "cloudpickle" (faster for
    # big dict-shaped state: skops wrote TfidfVectorizer's vocabulary at ~0.6 ms per term)
    serialization: Literal["skops", "cloudpickle"] = "skops"
    skops_trusted_types: tuple[str, ...] = ()
    required_tables: tuple[str, ...] = ()  # "schema.table" that source_sql reads
    # the one table source_sql takes every column from: a column missing from it is a
    # ConfigError naming the table's columns before any query runs (declared models)
    source_table: str | None = None
    # what the online endpoint takes instead of the features (None: the features themselves)
    raw_inputs: RawInputs | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"model {self.name}: unknown metric {self.metric!r}; known: {sorted(METRICS)}")
        if self.task == "classification" and self.metric in ("mae", "mse", "r2"):
            raise ValueError(f"model {self.name}: a classifier cannot be ranked by {self.metric}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"model {self.name}: holdout_fraction must be between 0 and 1")

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name

    @property
    def drift_columns(self) -> tuple[str, ...]:
        return self.drift_features or self.features

    @property
    def greater_is_better(self) -> bool:
        return METRICS[self.metric]
