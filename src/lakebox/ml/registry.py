"""The champion rule: a new version replaces the champion only when it is better on the
same holdout by a margin.

The current champion is scored on the NEW holdout (the rows the new version was judged
on), so the two numbers compare like with like. A new version that wins becomes alias
`champion`; otherwise `challenger`. The first version is champion. A model that must beat
its naive baseline (`beat_baseline`, declared models) and does not, by the margin on the
same holdout, gets no alias at all: decision `rejected`. A champion trained on
another feature set is replaced without comparison; one that cannot be loaded or scored
for any other reason is kept (the new version is `challenger`) and an alert says so:
never promote blind. Every decision lands in `ml.model_decisions` and as tags on the
model version and its run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.log import get_logger
from lakebox.ml import history, metrics, tables, tracking

if TYPE_CHECKING:
    from lakebox.ml.spec import MLModelSpec
    from lakebox.ml.train import CandidateRun
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

CHAMPION, CHALLENGER = "champion", "challenger"
REJECTED = "rejected"  # a decision, not an alias: the version did not beat its naive baseline
RULE = "rule"  # ml.model_decisions.decided_by of the champion rule's rows
_ALLOW = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


@dataclass(frozen=True)
class Decision:
    model_name: str
    version: str
    decision: str  # champion | challenger | rejected
    metric: str
    value: float
    champion_value: float | None
    reason: str
    run_id: str
    previous_champion: str | None
    fault: str | None = None  # why the champion could not be compared, when it was kept anyway


def champion_version(client: Any, name: str) -> str | None:
    """The version alias `champion` points at, or None (no model, or no champion yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_version(name: str, version: str, label: str | None = None, store: str = "") -> Any:
    """A registered version as its scikit-learn object (predict_proba included); a
    StoreError naming the store and what to do when it cannot be loaded.

    MLflow 3.17 refuses to deserialize any format (skops too: its allow-list is read from
    the model itself) unless MLFLOW_ALLOW_PICKLE_DESERIALIZATION is true; lakebox loads
    only versions from its own registry, so it allows it for this call alone."""
    import mlflow.sklearn

    before = os.environ.get(_ALLOW)
    os.environ[_ALLOW] = "true"
    try:
        return mlflow.sklearn.load_model(f"models:/{name}/{version}")
    except Exception as exc:  # missing files, a broken pickle, a class gone: all unusable
        raise tracking.StoreError(
            f"model {name} v{label or version}: could not be loaded from the MLflow store {store or 'in use'} "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}): restore its artifacts "
            "($LAKEBOX_HOME/mlartifacts, or LAKEBOX_MLFLOW_ARTIFACTS) and the store, or start the model's history "
            f"over with `lakebox ml forget {name} --reason '...'`") from exc
    finally:
        if before is None:
            os.environ.pop(_ALLOW, None)
        else:
            os.environ[_ALLOW] = before


def register(
    settings: Settings, warehouse: Warehouse, spec: MLModelSpec, best: CandidateRun, holdout: Any,
    client: Any | None = None, baseline: Mapping[str, float] | None = None,
    trigger: tuple[str, str] | None = None,
) -> Decision:
    """Register `best` as a new version of `spec.name` and decide its alias; `baseline`
    holds the naive baseline's holdout metrics (`baseline_<metric>`, metrics.baseline);
    `trigger` (who, why) names a retraining trigger in the decision's row (ml/triggers.py)."""
    from mlflow.exceptions import MlflowException

    client = client or tracking.connect(settings)
    with tracking.store_errors(settings):
        past = history.check(settings, warehouse, client, spec.name)
        try:
            client.create_registered_model(spec.name, description=f"{spec.task} model of pipeline {spec.pipeline}")
        except MlflowException as exc:
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        past = history.bind(settings, warehouse, client, past)
        previous = champion_version(client, spec.name)
        version = str(client.create_model_version(spec.name, source=best.model_uri, run_id=best.run_id,
                                                  model_id=best.model_id).version)
        value = best.metrics[spec.metric]
        beats, versus = _versus_baseline(spec, value, baseline or {}, len(holdout))
        if beats:
            decision, champion_value, reason, fault = _decide(settings, client, spec, past, previous, value, holdout)
            reason += versus
            client.set_registered_model_alias(spec.name, decision, version)
        else:
            decision, champion_value, reason, fault = REJECTED, None, versus, None
        made = Decision(spec.name, past.label(version), decision, spec.metric, value, champion_value, reason,
                        best.run_id, None if previous is None else past.label(previous), fault)
        _record(warehouse, client, made, trigger)
    get_logger().info("model version decided", model=spec.name, version=made.version, decision=decision,
                      reason=reason)
    if fault:
        _alert_kept(settings, made)
    return made


def _decide(
    settings: Settings, client: Any, spec: MLModelSpec, past: history.History, previous: str | None, value: float,
    holdout: Any,
) -> tuple[str, float | None, str, str | None]:
    """(decision, the champion's value on the holdout, reason, why the champion could not be compared)."""
    if previous is None:
        return CHAMPION, None, f"first version of {spec.name}: champion by default", None
    trained_on = _features_of(client, spec.name, previous)
    champion = past.label(previous)
    if trained_on is not None and trained_on != list(spec.features):
        return CHAMPION, None, (f"champion v{champion} was trained on features {', '.join(trained_on)}, the model's "
                                f"are now {', '.join(spec.features)}: it cannot score them, so the new version "
                                "replaces it without comparison"), None
    try:
        model = load_version(spec.name, previous, champion, tracking.store_name(settings))
        predicted = model.predict(holdout[list(spec.features)])
        champion_value = metrics.score(spec, holdout[spec.label_column], predicted)[spec.metric]
    except Exception as exc:  # noqa: BLE001 - whatever broke, a champion is not replaced blind
        cause = exc.__cause__ if isinstance(exc, tracking.StoreError) and exc.__cause__ else exc
        fault = (f"champion v{champion} could not be loaded or scored on the new holdout "
                 f"({type(cause).__name__}: {' '.join(str(cause).split())[:300]})")
        return CHALLENGER, None, (f"{fault}; champion kept, the new version is challenger: restore v{champion}'s "
                                  "artifacts and train again, or start the model's history over with "
                                  f"`lakebox ml forget {spec.name} --reason ...`"), fault
    gain = value - champion_value if spec.greater_is_better else champion_value - value
    comparison = (f"{spec.metric} {value:.4f} vs champion v{champion} {champion_value:.4f} on the same holdout "
                  f"({len(holdout)} rows)")
    if gain >= spec.margin - 1e-12:
        return CHAMPION, champion_value, f"{comparison}: better by {gain:.4f} >= margin {spec.margin}", None
    return (CHALLENGER, champion_value, f"{comparison}: better by {gain:.4f} < margin {spec.margin}; champion kept",
            None)


def _versus_baseline(spec: MLModelSpec, value: float, baseline: Mapping[str, float], rows: int) -> tuple[bool, str]:
    """(whether `value` may be promoted, what the decision's reason says of the baseline):
    with `spec.beat_baseline`, it must beat the naive baseline by the margin."""
    if not spec.beat_baseline:
        return True, ""
    naive = "the majority class" if spec.task == "classification" else (
        f"the last value ({spec.baseline_column})" if spec.baseline_column else "the last value (the previous row's)")
    base = baseline.get(f"baseline_{spec.metric}")
    if base is None:
        raise ValueError(f"model {spec.name}: no baseline {spec.metric} to compare with (metrics.baseline)")
    gain = value - base if spec.greater_is_better else base - value
    comparison = f"{spec.metric} {value:.4f} vs {naive} baseline {base:.4f} on the same holdout ({rows} rows)"
    if gain >= spec.margin - 1e-12:
        return True, f"; beats {naive} baseline ({spec.metric} {base:.4f}) by {gain:.4f} >= margin {spec.margin}"
    return False, (f"{comparison}: better by {gain:.4f} < margin {spec.margin}; not promoted (registered with no "
                   "alias): its features do not predict the target better than the naive baseline")


def _features_of(client: Any, name: str, version: str) -> list[str] | None:
    """The features `version` was trained on (its run's `features` param), or None if unknown."""
    from mlflow.exceptions import MlflowException

    try:
        run_id = client.get_model_version(name, version).run_id
        recorded = client.get_run(run_id).data.params.get("features") if run_id else None
    except MlflowException:
        return None
    return None if recorded is None else [f for f in recorded.split(",") if f]


def _alert_kept(settings: Settings, made: Decision) -> None:
    """Warn, and alert (LAKEBOX_ALERT_WEBHOOK_URL): a champion nobody can compare with is a problem."""
    from lakebox.observability import send_alert

    get_logger().warning("champion kept: it could not be compared", model=made.model_name,
                         champion=made.previous_champion, version=made.version, reason=made.reason)
    send_alert(settings, f"{made.model_name}:champion_kept:{made.version}", "champion_kept",
               f":warning: lakebox model {made.model_name}: {made.reason}",
               {"model": made.model_name, "champion": made.previous_champion, "version": made.version})


def _record(warehouse: Warehouse, client: Any, made: Decision, trigger: tuple[str, str] | None = None) -> None:
    import pyarrow as pa

    from lakebox.warehouse.ops import utcnow

    tags = {"lakebox.decision": made.decision, "lakebox.decision_reason": made.reason[:5000],
            "lakebox.decision_metric": made.metric, "lakebox.decision_value": f"{made.value:.6g}",
            "lakebox.champion_value": "" if made.champion_value is None else f"{made.champion_value:.6g}"}
    for key, val in tags.items():
        client.set_model_version_tag(made.model_name, history.mlflow_version(made.version), key, val)
        client.set_tag(made.run_id, key, val)
    tables.ensure_added(warehouse, tables.MODEL_DECISIONS)
    row = pa.table({
        "model_name": [made.model_name], "version": [made.version], "decision": [made.decision],
        "metric": [made.metric], "value": pa.array([made.value], pa.float64()),
        "champion_value": pa.array([made.champion_value], pa.float64()),
        "reason": [made.reason if trigger is None else f"retrained by {trigger[0]} ({trigger[1]}); {made.reason}"],
        "decided_at": pa.array([utcnow()], pa.timestamp("us")), "run_id": [made.run_id],
        "from_version": pa.array([made.previous_champion if made.decision == CHAMPION else None], pa.string()),
        "decided_by": [RULE if trigger is None else trigger[0]],
    })
    tables.append(warehouse, tables.MODEL_DECISIONS, row)
