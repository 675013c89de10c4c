"""How a model is judged: its metrics beside a naive baseline, a confusion matrix, and
which inputs it leans on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakebox.ml.spec import MLModelSpec


def score(spec: MLModelSpec, y_true: Any, y_pred: Any) -> dict[str, float]:
    from sklearn import metrics as m

    if spec.task == "classification":
        return {
            "accuracy": float(m.accuracy_score(y_true, y_pred)),
            "precision_macro": float(m.precision_score(y_true, y_pred, average="macro", zero_division=0)),
            "recall_macro": float(m.recall_score(y_true, y_pred, average="macro", zero_division=0)),
            "f1_macro": float(m.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        }
    return {
        "mse": float(m.mean_squared_error(y_true, y_pred)),
        "mae": float(m.mean_absolute_error(y_true, y_pred)),
        "r2": float(m.r2_score(y_true, y_pred)),
    }


def baseline(spec: MLModelSpec, train: Any, holdout: Any) -> dict[str, float]:
    """What a model must beat: the majority class of the training rows (classifiers); the
    last observed value (regressors): `spec.baseline_column`, and where it is null (or
    there is none) the label of the row before in time order."""
    import numpy as np

    y_true = holdout[spec.label_column]
    predicted: Any
    if spec.task == "classification":
        majority = train[spec.label_column].mode().iloc[0]
        predicted = [majority] * len(holdout)
    else:
        held = y_true.to_numpy(dtype=float)
        predicted = np.concatenate([train[spec.label_column].to_numpy(dtype=float)[-1:], held[:-1]])
        if spec.baseline_column:
            column = holdout[spec.baseline_column].to_numpy(dtype=float)
            predicted = np.where(np.isnan(column), predicted, column)
    return {f"baseline_{k}": v for k, v in score(spec, y_true, predicted).items()}


def confusion_figure(y_true: Any, y_pred: Any, title: str) -> Any:
    """A confusion-matrix figure (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(7, 6), dpi=90)
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, ax=ax, colorbar=False, xticks_rotation=45)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def feature_importances(model: Any, top: int = 50) -> list[tuple[str, float]]:
    """The final estimator's importances (trees) or mean absolute coefficients (linear
    models), named after the preprocessed inputs; empty when the model has neither."""
    import numpy as np

    estimator = model[-1] if hasattr(model, "steps") else model
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=float)
    elif hasattr(estimator, "coef_"):
        coef = np.asarray(estimator.coef_, dtype=float)
        values = np.abs(coef).mean(axis=0) if coef.ndim == 2 else np.abs(coef)
    else:
        return []
    try:
        names = [str(n) for n in model[:-1].get_feature_names_out()] if hasattr(model, "steps") else []
    except (AttributeError, ValueError):
        names = []
    if len(names) != len(values):
        names = [f"x{i}" for i in range(len(values))]
    order = np.argsort(-values)[:top]
    return [(names[i], float(values[i])) for i in order]
