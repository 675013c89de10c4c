"""Live quality: the predictions a model made, scored against the labels known now.

Labels arrive after the predictions (a commit's type once its message is parsed, a life
expectancy once the year's figure lands), so the holdout figure of training says how a
version did on the past; this says how it does in service. `ml.model_performance` holds
one row per model, version and day scored, with the model's own metric (`spec.metric`)
and how many labelled predictions it is computed on. It is rebuilt whole on each refresh:
labels of old days land late and change old days' figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakebox.ml import data, metrics, tables

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.ml.spec import MLModelSpec
    from lakebox.warehouse import Warehouse


def compute(warehouse: Warehouse, spec: MLModelSpec) -> pa.Table:
    """Per (version, day scored): the metric on the predictions whose label is known now.
    Empty when nothing is scored yet or the model's input is not built."""
    import pyarrow as pa

    from lakebox.warehouse.ops import utcnow

    empty = pa.table({"model_name": pa.array([], pa.string()), "model_version": pa.array([], pa.string()),
                      "day": pa.array([], pa.date32()), "metric": pa.array([], pa.string()),
                      "value": pa.array([], pa.float64()), "labelled_rows": pa.array([], pa.int64()),
                      "computed_at": pa.array([], pa.timestamp("us"))})
    ns, name = spec.predictions_table.split(".", 1)
    if not warehouse.table_exists(ns, name) or data.missing_tables(warehouse, spec):
        return empty
    data.check_columns(warehouse, spec)
    keys = " and ".join(f"p.{k} = src.{k}" for k in spec.key_columns)
    joined = warehouse.query_arrow(
        f"select p.model_version, cast(p.scored_at as date) as day, p.{spec.predicted_column} as predicted, "
        f"src.{spec.label_column} as label from {spec.predictions_table} as p join ({spec.source_sql}) as src "
        f"on {keys} where src.{spec.label_column} is not null and p.model_name = ?", [spec.name])
    if joined.num_rows == 0:
        return empty
    frame = joined.to_pandas()
    if spec.task == "classification":  # predictions are kept as text
        frame["label"], frame["predicted"] = frame["label"].astype(str), frame["predicted"].astype(str)
    else:
        frame["label"], frame["predicted"] = frame["label"].astype(float), frame["predicted"].astype(float)
    versions, days, values, counts = [], [], [], []
    for (version, day), group in frame.groupby(["model_version", "day"], sort=True):  # one group a day, not a row
        versions.append(str(version))
        days.append(day)
        counts.append(len(group))
        values.append(_metric(spec, group["label"], group["predicted"]))
    n = len(versions)
    return pa.table({
        "model_name": pa.array([spec.name] * n, pa.string()), "model_version": pa.array(versions, pa.string()),
        "day": pa.array(days, pa.date32()), "metric": pa.array([spec.metric] * n, pa.string()),
        "value": pa.array(values, pa.float64()), "labelled_rows": pa.array(counts, pa.int64()),
        "computed_at": pa.array([utcnow()] * n, pa.timestamp("us")),
    })


def _metric(spec: MLModelSpec, y_true: Any, y_pred: Any) -> float | None:
    """`spec.metric` on one group; None where it is undefined (r2 of one row)."""
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning

    if spec.metric == "r2" and len(y_true) < 2:
        return None
    with warnings.catch_warnings():  # score() computes every metric: r2 warns on one row
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return metrics.score(spec, y_true, y_pred)[spec.metric]


def refresh(warehouse: Warehouse, spec: MLModelSpec) -> pa.Table:
    """Recompute the model's rows of ml.model_performance (replaced in one transaction); the
    rows. On Spark (no DELETE on its parquet tables) they are computed, for the triggers, and
    not stored."""
    rows = compute(warehouse, spec)
    if not warehouse.can_delete_rows:
        return rows
    tables.ensure(warehouse, tables.MODEL_PERFORMANCE)
    with warehouse.transaction():
        warehouse.execute(f"delete from {tables.MODEL_PERFORMANCE} where model_name = ?", [spec.name])
        tables.append(warehouse, tables.MODEL_PERFORMANCE, rows)
    return rows
