"""The ML stages a pipeline puts after its dbt stage: predict, train (when due), drift.

Order matters and is the point: `predict_stage` runs first and scores new rows with the
champion as it stood when the run started (so new rows are scored by a model that has
not seen them); `train_stage` then trains when due, and on a first run (no champion at
the start) scores with the version it just made champion; `drift_stage` reports drift and
refreshes live quality (ml.model_performance: past predictions against the labels this run
brought). Retraining on a trigger (ml/triggers.py) is `lakebox serve`'s and `lakebox watch`'s.
A model whose input table is not built yet, or with too few labels, is skipped with a
message, never failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakebox.ml import data

if TYPE_CHECKING:
    from lakebox.ml.spec import MLModelSpec
    from lakebox.stage import RunContext, StageResult

_AT_START = "ml_champion_at_start"  # ctx.extras: model -> champion version when predict ran


def predict_stage(spec: MLModelSpec) -> Callable[[RunContext], StageResult]:
    def predict(ctx: RunContext) -> StageResult:
        from lakebox.ml.predict import predict as run_predict
        from lakebox.stage import StageResult

        if _not_built(ctx, spec):
            return StageResult()
        result = run_predict(ctx.settings, ctx.warehouse, spec)
        ctx.extras.setdefault(_AT_START, {})[spec.name] = result.version
        return StageResult(rows_in=result.rows_scored, rows_out=result.rows_scored)

    return predict


def train_stage(spec: MLModelSpec) -> Callable[[RunContext], StageResult]:
    def train(ctx: RunContext) -> StageResult:
        from lakebox.ml.predict import predict as run_predict
        from lakebox.ml.train import train as run_train
        from lakebox.stage import StageResult

        if _not_built(ctx, spec):
            return StageResult()
        due, why = training_due(ctx.settings, ctx.warehouse, spec, force=bool(ctx.extras.get("ml_force_train")))
        if not due:
            ctx.log.info("training not due", model=spec.name, reason=why)
            return StageResult()
        result = run_train(ctx.settings, ctx.warehouse, spec, lakebox_run_id=ctx.run_id)
        scored = 0
        had_champion = ctx.extras.get(_AT_START, {}).get(spec.name)
        if result.decision and result.decision.decision == "champion" and had_champion is None:
            scored = run_predict(ctx.settings, ctx.warehouse, spec, version=result.decision.version).rows_scored
        return StageResult(rows_in=result.labelled_rows, rows_out=scored)

    return train


def drift_stage(spec: MLModelSpec) -> Callable[[RunContext], StageResult]:
    def drift(ctx: RunContext) -> StageResult:
        from lakebox.ml.drift import drift as run_drift
        from lakebox.ml.performance import refresh
        from lakebox.stage import StageResult

        if _not_built(ctx, spec):
            return StageResult()
        result = run_drift(ctx.settings, ctx.warehouse, spec)
        live = refresh(ctx.warehouse, spec)
        ctx.log.info("live quality refreshed", model=spec.name, days=live.num_rows)
        ctx.extras.setdefault("ml_drift", {})[spec.name] = result.drifted
        if result.drifted:
            ctx.log.warning("drift detected", model=spec.name, features=result.drifted_features)
        return StageResult(rows_out=len(result.features))

    return drift


def training_due(settings: Any, warehouse: Any, spec: MLModelSpec, force: bool = False) -> tuple[bool, str]:
    """Due on a first run (no champion) or when `retrain_after` labelled rows arrived since
    the champion's training data was read."""
    from lakebox.ml import history, registry, tracking

    if force:
        return True, "forced"
    with tracking.store_errors(settings):
        client, past = history.open_store(settings, warehouse, spec.name)
        champion = registry.champion_version(client, spec.name)
        if champion is None:
            return True, "no champion yet"
        run_id = client.get_model_version(spec.name, champion).run_id
        trained_on = int(client.get_run(run_id).data.params.get("data_rows", 0)) if run_id else 0
    version = past.label(champion)
    data.check_columns(warehouse, spec)
    labelled = warehouse.query(
        f"select count(*) from ({spec.source_sql}) as src where {spec.label_column} is not null")[0][0]
    new = int(labelled) - trained_on
    if new >= spec.retrain_after:
        return True, f"{new} new labelled rows since champion v{version} (>= {spec.retrain_after})"
    return False, f"{new} new labelled rows since champion v{version} (< {spec.retrain_after})"


def _not_built(ctx: RunContext, spec: MLModelSpec) -> bool:
    missing = data.missing_tables(ctx.warehouse, spec)
    if missing:
        ctx.log.warning("ML stage skipped: input not built", model=spec.name, missing=missing)
    return bool(missing)
