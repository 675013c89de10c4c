"""Declared models (`[[models]]` in pipeline.toml) as the ML lifecycle's own MLModelSpecs.

A declared model is trained, registered, scored and watched for drift by the same code as
the bundled ones (lakebox.ml); what the TOML adds is only this mapping: the mart's columns
become the spec's source query, each `candidates` entry a scikit-learn estimator from an
allow-list behind the same preprocessing (numeric features imputed, and scaled for the
linear and distance-based estimators; other features one-hot encoded), and the naive
baseline a version must beat before it can be promoted (`beat_baseline`).

scikit-learn is imported only when a spec's `candidates()` is called (at training), so
building the specs, as discovery and `lakebox check` do, stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from lakebox.declarative.config import ESTIMATORS, ModelConfig, PipelineConfig
from lakebox.errors import ConfigError
from lakebox.ml.spec import MLModelSpec

if TYPE_CHECKING:
    from lakebox.pipelines.spec import StageSpec
    from lakebox.stage import RunContext, StageResult

_TASKS = {"classify": "classification", "regress": "regression"}
_METRICS = {"classify": ("f1_macro", "accuracy"), "regress": ("mae", "mse", "r2")}

# estimator -> (its classifier, its regressor: "module:Class", None where there is none;
# whether numeric features are scaled first: linear models and distances need it, trees do not)
_ESTIMATORS: dict[str, tuple[str | None, str | None, bool]] = {
    "linear": ("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:LinearRegression", True),
    "ridge": ("sklearn.linear_model:RidgeClassifier", "sklearn.linear_model:Ridge", True),
    "lasso": (None, "sklearn.linear_model:Lasso", True),
    "random_forest": ("sklearn.ensemble:RandomForestClassifier", "sklearn.ensemble:RandomForestRegressor", False),
    "gradient_boosting": ("sklearn.ensemble:GradientBoostingClassifier",
                          "sklearn.ensemble:GradientBoostingRegressor", False),
    "hist_gradient_boosting": ("sklearn.ensemble:HistGradientBoostingClassifier",
                               "sklearn.ensemble:HistGradientBoostingRegressor", False),
    "logistic_regression": ("sklearn.linear_model:LogisticRegression", None, True),
    "knn": ("sklearn.neighbors:KNeighborsClassifier", "sklearn.neighbors:KNeighborsRegressor", True),
}


def model_specs(config: PipelineConfig) -> tuple[MLModelSpec, ...]:
    """Every `[[models]]` of `config` as an MLModelSpec; a ConfigError naming the file and the
    model for what cannot be right whatever the data (an estimator of the other task...)."""
    return tuple(_spec(config, model) for model in config.models)


def stages(config: PipelineConfig) -> tuple[StageSpec, ...]:
    """The ML stages after transform: predict, train, drift, each over every declared model
    in order (see lakebox.ml.stages for why that order); none without models."""
    from lakebox.pipelines.spec import StageSpec

    specs = model_specs(config)
    if not specs:
        return ()
    return tuple(StageSpec(kind, partial(_every_model, kind, specs)) for kind in ("predict", "train", "drift"))


def _every_model(kind: str, specs: Sequence[MLModelSpec], ctx: RunContext) -> StageResult:
    from lakebox.ml import stages as ml_stages
    from lakebox.stage import StageResult

    make = {"predict": ml_stages.predict_stage, "train": ml_stages.train_stage, "drift": ml_stages.drift_stage}[kind]
    rows_in = rows_out = 0
    for spec in specs:
        result = make(spec)(ctx)
        rows_in, rows_out = rows_in + result.rows_in, rows_out + result.rows_out
    return StageResult(rows_in=rows_in, rows_out=rows_out)


def _spec(config: PipelineConfig, model: ModelConfig) -> MLModelSpec:
    where = f"{config.path}: model {model.name!r}"
    problems = []
    if model.task not in _TASKS:
        problems.append(f"task {model.task!r} is not one of: {', '.join(_TASKS)}")
    elif model.metric not in _METRICS[model.task]:
        problems.append(f"metric {model.metric!r} cannot rank a {model.task} model; use one of: "
                        f"{', '.join(_METRICS[model.task])}")
    if model.from_.count(".") != 1:
        problems.append(f"from = {model.from_!r} must name a mart as \"schema.table\" (e.g. \"analytics.x\")")
    if model.task == "classify" and model.baseline is not None:
        problems.append(f"baseline = {model.baseline!r} is for regress models; a classifier must beat the majority "
                        "class of its training rows (leave baseline out)")
    if not model.candidates:
        problems.append(f"candidates is empty; give at least one of: {', '.join(ESTIMATORS)}")
    for i, candidate in enumerate(model.candidates):
        if candidate.estimator not in _ESTIMATORS:
            problems.append(f"candidates[{i}]: estimator {candidate.estimator!r} is not one of: {', '.join(ESTIMATORS)}")
        elif model.task in _TASKS and _class_of(model.task, candidate.estimator) is None:
            other = "regress" if model.task == "classify" else "classify"
            fits = [e for e in ESTIMATORS if _class_of(model.task, e) is not None]
            problems.append(f"candidates[{i}]: estimator {candidate.estimator!r} is for {other} models only; "
                            f"for task = {model.task!r} use one of: {', '.join(fits)}")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    baseline = (model.baseline,) if model.baseline and model.baseline not in model.features else ()
    columns = dict.fromkeys((*model.key, model.time, *model.features, model.target, *baseline))
    return MLModelSpec(
        name=model.name, pipeline=config.name, task=_TASKS[model.task],  # type: ignore[arg-type]  # checked above
        source_sql=f"select {', '.join(columns)} from {model.from_}",
        key_columns=model.key, time_column=model.time, label_column=model.target, features=model.features,
        candidates=partial(candidates, where, model), predictions_table=model.predictions_table,
        metric=model.metric, margin=model.margin, baseline_column=model.baseline, beat_baseline=True,
        # the estimators are lakebox's allow-list, loaded only from its own registry; skops's
        # import walks every loaded module (seconds after dbt's) and needs each type listed
        serialization="cloudpickle", required_tables=(model.from_,), source_table=model.from_,
    )


def candidates(where: str, model: ModelConfig) -> dict[str, Any]:
    """Fresh, unfitted pipelines (preprocessing, then the estimator) by candidate name: the
    estimator's name, with `_2`, `_3`... when one estimator is listed again with other params."""
    import importlib

    built: dict[str, Any] = {}
    for i, candidate in enumerate(model.candidates):
        path = _class_of(model.task, candidate.estimator)
        if path is None:  # model_specs refuses it first; this is for a caller that did not ask it
            raise ConfigError(f"{where}: candidates[{i}]: estimator {candidate.estimator!r} cannot {model.task}")
        module, _, name = path.partition(":")
        cls = getattr(importlib.import_module(module), name)
        estimator = _estimator(f"{where}: candidates[{i}] ({candidate.estimator})", cls, candidate.params)
        label = candidate.estimator
        n = 2
        while label in built:
            label, n = f"{candidate.estimator}_{n}", n + 1
        built[label] = _with_preprocessing(estimator, scale=_ESTIMATORS[candidate.estimator][2])
    return built


def _class_of(task: str, estimator: str) -> str | None:
    classifier, regressor, _ = _ESTIMATORS.get(estimator, (None, None, False))
    return classifier if task == "classify" else regressor


def _estimator(where: str, cls: Any, params: Mapping[str, Any]) -> Any:
    """`cls(**params)` over lakebox's defaults; an unknown or invalid param is a ConfigError
    naming the estimator's params."""
    known = sorted(cls().get_params())
    unknown = [p for p in params if p not in known]
    if unknown:
        raise ConfigError(f"{where}: {cls.__name__} has no parameter(s) {', '.join(map(repr, unknown))}; its "
                          f"parameters: {', '.join(known)}")
    # unless params say otherwise: the same fit from the same rows, and a logistic
    # regression that converges on a few thousand scaled rows without a warning
    defaults: dict[str, Any] = {"random_state": 0} if "random_state" in known else {}
    if cls.__name__ == "LogisticRegression":
        defaults["max_iter"] = 1000
    estimator = cls(**{**defaults, **params})
    try:
        estimator._validate_params()  # scikit-learn's own check of each value, else only at fit
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from None
    return estimator


def _with_preprocessing(estimator: Any, *, scale: bool) -> Any:
    """Numeric features: the median where missing (and standardised for `scale`); any other
    feature: its text one-hot encoded, a value unseen in training encoded as none."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]) if scale \
        else SimpleImputer(strategy="median")
    other = Pipeline([("text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
                      ("one_hot", OneHotEncoder(handle_unknown="ignore"))])
    columns = ColumnTransformer([("numeric", numeric, make_column_selector(dtype_include="number")),
                                 ("other", other, make_column_selector(dtype_exclude="number"))])
    return Pipeline([("columns", columns), ("model", estimator)])


def as_text(frame: Any) -> Any:
    """Every value as its text (booleans, dates and a null's "" alike), for the one-hot encoder."""
    return frame.astype(str)

