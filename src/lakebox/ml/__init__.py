"""The shared ML lifecycle: train candidates, register the best under the champion rule,
score new rows with the champion, watch for drift. Every pipeline's models use it.

MLflow, scikit-learn, scipy and matplotlib are imported only inside the functions that
need them, so importing this package is cheap.

    spec = MLModelSpec(...)                     # what a pipeline declares per model
    train(settings, warehouse, spec)            # -> TrainResult (with .decision)
    predict(settings, warehouse, spec)          # -> PredictResult
    drift(settings, warehouse, spec)            # -> DriftResult (.drifted)
    predict_stage(spec), train_stage(spec), drift_stage(spec)   # stages for a pipeline
"""

from lakebox.ml.drift import DriftResult, drift
from lakebox.ml.predict import PredictResult, predict
from lakebox.ml.registry import Decision, champion_version, register
from lakebox.ml.spec import MLModelSpec
from lakebox.ml.specs import register_spec, specs_for
from lakebox.ml.stages import drift_stage, predict_stage, train_stage, training_due
from lakebox.ml.train import TrainResult, train

__all__ = [
    "Decision", "DriftResult", "MLModelSpec", "PredictResult", "TrainResult", "champion_version", "drift",
    "drift_stage", "predict", "predict_stage", "register", "register_spec", "specs_for", "train", "train_stage",
    "training_due",
]
