"""The champion rule: a new version replaces the champion only when it is better on the
same holdout by a margin.

The current champion is scored on the NEW holdout (the rows the new version was judged
on), so the two numbers compare like with like. A new version that wins becomes alias
`champion`; otherwise `challenger`. The first version is champion. Every decision lands
in `ml.model_decisions` and as tags on the model version and its run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.log import get_logger
from lakebox.ml import metrics, tables, tracking

if TYPE_CHECKING:
    from lakebox.ml.spec import MLModelSpec
    from lakebox.ml.train import CandidateRun
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

CHAMPION, CHALLENGER = "champion", "challenger"
_ALLOW = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


@dataclass(frozen=True)
class Decision:
    model_name: str
    version: str
    decision: str  # champion | challenger
    metric: str
    value: float
    champion_value: float | None
    reason: str
    run_id: str
    previous_champion: str | None


def champion_version(client: Any, name: str) -> str | None:
    """The version alias `champion` points at, or None (no model, or no champion yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_version(name: str, version: str) -> Any:
    """A registered version as its scikit-learn object (predict_proba included).

    MLflow 3.17 refuses to deserialize any format (skops too: its allow-list is read from
    the model itself) unless MLFLOW_ALLOW_PICKLE_DESERIALIZATION is true; lakebox loads
    only versions from its own registry, so it allows it for this call alone."""
    import mlflow.sklearn

    before = os.environ.get(_ALLOW)
    os.environ[_ALLOW] = "true"
    try:
        return mlflow.sklearn.load_model(f"models:/{name}/{version}")
    finally:
        if before is None:
            os.environ.pop(_ALLOW, None)
        else:
            os.environ[_ALLOW] = before


def register(
    settings: Settings, warehouse: Warehouse, spec: MLModelSpec, best: CandidateRun, holdout: Any,
    client: Any | None = None,
) -> Decision:
    """Register `best` as a new version of `spec.name` and decide its alias."""
    from mlflow.exceptions import MlflowException

    client = client or tracking.connect(settings)
    try:
        client.create_registered_model(spec.name, description=f"{spec.task} model of pipeline {spec.pipeline}")
    except MlflowException as exc:
        if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
    previous = champion_version(client, spec.name)
    version = str(client.create_model_version(spec.name, source=best.model_uri, run_id=best.run_id,
                                              model_id=best.model_id).version)
    value = best.metrics[spec.metric]
    decision, champion_value, reason = _decide(spec, previous, value, holdout)
    client.set_registered_model_alias(spec.name, decision, version)
    made = Decision(spec.name, version, decision, spec.metric, value, champion_value, reason, best.run_id, previous)
    _record(warehouse, client, made)
    get_logger().info("model version decided", model=spec.name, version=version, decision=decision, reason=reason)
    return made


def _decide(spec: MLModelSpec, previous: str | None, value: float, holdout: Any) -> tuple[str, float | None, str]:
    if previous is None:
        return CHAMPION, None, f"first version of {spec.name}: champion by default"
    try:
        model = load_version(spec.name, previous)
        predicted = model.predict(holdout[list(spec.features)])
        champion_value = metrics.score(spec, holdout[spec.label_column], predicted)[spec.metric]
    except Exception as exc:  # noqa: BLE001 - an old champion that cannot read today's features cannot serve them either
        return CHAMPION, None, (f"champion v{previous} could not score the new holdout "
                                f"({type(exc).__name__}: {str(exc)[:200]}); the new version replaces it")
    gain = value - champion_value if spec.greater_is_better else champion_value - value
    comparison = (f"{spec.metric} {value:.4f} vs champion v{previous} {champion_value:.4f} on the same holdout "
                  f"({len(holdout)} rows)")
    if gain >= spec.margin - 1e-12:
        return CHAMPION, champion_value, f"{comparison}: better by {gain:.4f} >= margin {spec.margin}"
    return CHALLENGER, champion_value, f"{comparison}: better by {gain:.4f} < margin {spec.margin}; champion kept"


def _record(warehouse: Warehouse, client: Any, made: Decision) -> None:
    import pyarrow as pa

    from lakebox.warehouse.ops import utcnow

    tags = {"lakebox.decision": made.decision, "lakebox.decision_reason": made.reason[:5000],
            "lakebox.decision_metric": made.metric, "lakebox.decision_value": f"{made.value:.6g}",
            "lakebox.champion_value": "" if made.champion_value is None else f"{made.champion_value:.6g}"}
    for key, val in tags.items():
        client.set_model_version_tag(made.model_name, made.version, key, val)
        client.set_tag(made.run_id, key, val)
    tables.ensure(warehouse, tables.MODEL_DECISIONS)
    row = pa.table({
        "model_name": [made.model_name], "version": [made.version], "decision": [made.decision],
        "metric": [made.metric], "value": pa.array([made.value], pa.float64()),
        "champion_value": pa.array([made.champion_value], pa.float64()), "reason": [made.reason],
        "decided_at": pa.array([utcnow()], pa.timestamp("us")), "run_id": [made.run_id],
    })
    tables.append(warehouse, tables.MODEL_DECISIONS, row)
