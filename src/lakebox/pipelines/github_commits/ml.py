"""github_commits' ML stages: the shared lifecycle (lakebox.ml) on the commit classifier."""

from __future__ import annotations

from lakebox.ml.stages import drift_stage, predict_stage, train_stage
from lakebox.pipelines.github_commits.classifier import SPEC as CLASSIFIER

predict = predict_stage(CLASSIFIER)
train = train_stage(CLASSIFIER)
drift = drift_stage(CLASSIFIER)
