"""Train every candidate of a model on the same time-based split, log each as an MLflow
run, and hand the best to the registry's champion rule.

Every candidate's run has its params, metrics and plots; only the best one's also holds
the model, the only one the registry ever takes: saving a model (serialising it, its
signature, its files and their registry entry) cost more than fitting a small one."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from lakebox.log import get_logger
from lakebox.ml import data, history, metrics, tracking

if TYPE_CHECKING:
    from lakebox.ml.registry import Decision
    from lakebox.ml.spec import MLModelSpec
    from lakebox.ml.triggers import Trigger
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

# Types skops must trust to load what the candidates are made of (MLflow 3.17 refuses to
# log a tree model otherwise); a spec adds its own in `skops_trusted_types`.
TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "numpy.float32", "numpy.float64", "numpy.int32", "numpy.int64", "numpy.dtype",
    "builtins.str", "builtins.int", "builtins.float",
)
_REQUIREMENTS = ("scikit-learn", "skops", "cloudpickle", "numpy", "scipy", "pandas")
_SIGNATURE_ROWS = 50


@dataclass
class CandidateRun:
    name: str
    run_id: str
    metrics: dict[str, float]
    seconds: float
    estimator: Any = field(default=None, repr=False)  # fitted
    model_uri: str = ""  # set once the model is logged (the best candidate only)
    model_id: str | None = None


@dataclass
class TrainResult:
    model_name: str
    status: str  # "trained" | "skipped"
    message: str
    labelled_rows: int = 0
    fingerprint: str = ""
    candidates: list[CandidateRun] = field(default_factory=list)
    best: CandidateRun | None = None
    decision: Decision | None = None
    seconds: float = 0.0


def pip_requirements() -> list[str]:
    """Pinned to what trained the model, so logging skips MLflow's slow inference of them."""
    pins = []
    for dist in _REQUIREMENTS:
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def train(
    settings: Settings, warehouse: Warehouse, spec: MLModelSpec, *, register: bool = True,
    lakebox_run_id: str | None = None, trigger: Trigger | None = None,
) -> TrainResult:
    """Fit each candidate, log it, and register the best (champion rule) unless told not to.
    A `trigger` (ml/triggers.py) is tagged on every candidate's run and named in the decision.

    Too few labelled rows (or a single class) is not an error: the result is `skipped`
    with a message saying how many there are and how many are needed. A store that cannot
    be used (or lost the model's history) is a one-line StoreError."""
    with tracking.store_errors(settings):
        return _train(settings, warehouse, spec, register=register, lakebox_run_id=lakebox_run_id, trigger=trigger)


def _train(
    settings: Settings, warehouse: Warehouse, spec: MLModelSpec, *, register: bool, lakebox_run_id: str | None,
    trigger: Trigger | None = None,
) -> TrainResult:
    log = get_logger()
    t0 = time.perf_counter()
    every_row = data.read_rows(warehouse, spec)
    rows = data.labelled(every_row, spec)
    skipped = _why_skip(rows, spec)
    if skipped:
        log.warning("training skipped", model=spec.name, reason=skipped)
        return TrainResult(spec.name, "skipped", skipped, labelled_rows=rows.num_rows,
                           seconds=time.perf_counter() - t0)
    fingerprint = data.fingerprint(rows)
    split = data.time_split(rows, spec)
    client, _ = history.open_store(settings, warehouse, spec.name)
    experiment_id = tracking.experiment_id(client, settings, spec.experiment_name)
    common = {
        "data_rows": rows.num_rows, "data_sha256": fingerprint,
        "train_rows": len(split.train), "holdout_rows": len(split.holdout),
        "train_end": str(split.train_end), "holdout_start": str(split.holdout_start),
        "holdout_fraction": spec.holdout_fraction, "features": ",".join(spec.features),
    }
    base = metrics.baseline(spec, split.train, split.holdout)
    runs = [
        _fit_and_log(spec, name, estimator, split, experiment_id, common, base, lakebox_run_id, trigger)
        for name, estimator in spec.candidates().items()
    ]
    sign = 1 if spec.greater_is_better else -1
    best = max(runs, key=lambda r: sign * r.metrics[spec.metric])
    _log_model(spec, best, split.train[list(spec.features)])
    result = TrainResult(spec.name, "trained", f"best of {len(runs)}: {best.name} "
                         f"({spec.metric} {best.metrics[spec.metric]:.4f})", rows.num_rows, fingerprint, runs, best)
    client.set_tag(best.run_id, "lakebox.best_candidate", "true")
    if register:
        from lakebox.ml.registry import register as register_best

        result.decision = register_best(
            settings, warehouse, spec, best, split.holdout, client=client, baseline=base,
            trigger=None if trigger is None else (f"trigger:{trigger.kind}", trigger.reason))
        if spec.drift_population == "unlabelled":  # what this version's drift is measured against
            from lakebox.ml.drift import record_reference

            record_reference(warehouse, spec, result.decision.version, every_row)
        result.message += f"; registered v{result.decision.version} as {result.decision.decision}"
    result.seconds = time.perf_counter() - t0
    log.info("trained", model=spec.name, best=best.name, metric=spec.metric,
             value=round(best.metrics[spec.metric], 4), seconds=round(result.seconds, 2),
             decision=result.decision.decision if result.decision else None)
    return result


def _why_skip(rows: Any, spec: MLModelSpec) -> str | None:
    if rows.num_rows < spec.min_labelled:
        return (f"model {spec.name}: only {rows.num_rows} labelled rows, at least {spec.min_labelled} are "
                "needed to train; training skipped (the pipeline goes on)")
    if spec.task != "classification":
        return None
    # the classes the candidates are fitted on: those of the training part of the time split
    cut = data.train_rows(rows.num_rows, spec)
    classes = sorted(map(str, rows[spec.label_column].slice(0, cut).unique().to_pylist()))
    if len(classes) < 2:
        return (f"model {spec.name}: the training rows (the oldest {cut} of {rows.num_rows} labelled) hold "
                f"{len(classes)} class ({', '.join(classes)}), at least 2 are needed to train; training skipped "
                "(the pipeline goes on)")
    return None


def _fit_and_log(
    spec: MLModelSpec, name: str, estimator: Any, split: data.Split, experiment_id: str,
    common: dict[str, Any], base: dict[str, float], lakebox_run_id: str | None, trigger: Trigger | None = None,
) -> CandidateRun:
    import mlflow

    from lakebox import __version__

    t0 = time.perf_counter()
    features = list(spec.features)
    x_train, y_train = split.train[features], split.train[spec.label_column]
    x_hold, y_hold = split.holdout[features], split.holdout[spec.label_column]
    tags = {"lakebox.pipeline": spec.pipeline, "lakebox.model": spec.name, "lakebox.candidate": name,
            "lakebox.version": __version__, "lakebox.git_commit": tracking.git_commit() or "unknown",
            "lakebox.data_sha256": common["data_sha256"], "lakebox.data_rows": str(common["data_rows"])}
    if lakebox_run_id:
        tags["lakebox.run_id"] = lakebox_run_id
    if trigger is not None:  # why this training ran
        tags.update({"lakebox.trigger": trigger.kind, "lakebox.trigger_reason": trigger.reason[:5000]})
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.name}-{name}", tags=tags) as run:
        estimator.fit(x_train, y_train)
        predicted = estimator.predict(x_hold)
        scores = metrics.score(spec, y_hold, predicted)
        if spec.cv_folds:
            scores.update(_cross_validate(spec, estimator, x_train, y_train))
        mlflow.log_params({"candidate": name, **common, **_scalar_params(estimator)})
        mlflow.log_metrics({**scores, **base})
        if spec.task == "classification":
            import matplotlib.pyplot as plt

            figure = metrics.confusion_figure(y_hold, predicted, f"{spec.name} / {name}: holdout")
            mlflow.log_figure(figure, "confusion_matrix.png")
            plt.close(figure)
        importances = metrics.feature_importances(estimator)
        if importances:
            mlflow.log_text("feature,importance\n" + "".join(f"{f},{v:.6g}\n" for f, v in importances),
                            "feature_importances.csv")
    return CandidateRun(name, run.info.run_id, scores, time.perf_counter() - t0, estimator)


def _log_model(spec: MLModelSpec, best: CandidateRun, x_train: Any) -> None:
    """Save the best candidate's model in its run (explicit pip requirements: MLflow's
    inference of them took seconds)."""
    import mlflow
    from mlflow.models import infer_signature

    t0 = time.perf_counter()
    sample = x_train.head(_SIGNATURE_ROWS)
    with warnings.catch_warnings():  # its hint on integer columns: lakebox loads the sklearn flavor
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(sample, best.estimator.predict(sample))
    # in the run, reopened: a model logged with only its run_id lands in the default experiment
    with mlflow.start_run(run_id=best.run_id):
        info = mlflow.sklearn.log_model(
            best.estimator, name="model", signature=signature,
            pip_requirements=pip_requirements(), serialization_format=spec.serialization,
            skops_trusted_types=(sorted({*TRUSTED_TYPES, *spec.skops_trusted_types})
                                 if spec.serialization == "skops" else None),
        )
    best.model_uri, best.model_id = info.model_uri, getattr(info, "model_id", None)
    best.seconds += time.perf_counter() - t0


def _cross_validate(spec: MLModelSpec, estimator: Any, x: Any, y: Any) -> dict[str, float]:
    """Time-series cross-validation on the training part (folds never look back in time)."""
    from sklearn.base import clone
    from sklearn.model_selection import TimeSeriesSplit

    folds = min(spec.cv_folds, len(x) // 10)
    if folds < 2:
        return {}
    values = []
    for train_idx, test_idx in TimeSeriesSplit(n_splits=folds).split(x):
        fold = clone(estimator).fit(x.iloc[train_idx], y.iloc[train_idx])
        values.append(metrics.score(spec, y.iloc[test_idx], fold.predict(x.iloc[test_idx]))[spec.metric])
    return {f"cv_{spec.metric}_mean": float(sum(values) / len(values)), "cv_folds": float(len(values))}


def _scalar_params(estimator: Any) -> dict[str, Any]:
    """The estimator's settings that fit in an MLflow param (no nested estimators)."""
    params = estimator.get_params(deep=True)
    return {k[:250]: v for k, v in params.items() if isinstance(v, str | int | float | bool) or v is None}
