"""Which models a pipeline has: those its spec declares (`ml_models`, passed in by the
caller that looked the pipeline up), plus any registered at run time with `register_spec`
(tests, notebooks)."""

from __future__ import annotations

from collections.abc import Sequence

from lakebox.errors import ConfigError
from lakebox.ml.spec import MLModelSpec

_registered: dict[str, dict[str, MLModelSpec]] = {}


def register_spec(spec: MLModelSpec) -> MLModelSpec:
    _registered.setdefault(spec.pipeline, {})[spec.name] = spec
    return spec


def registered_pipelines() -> list[str]:
    """Pipelines with models registered at run time."""
    return sorted(_registered)


def specs_for(pipeline: str, declared: Sequence[MLModelSpec] = ()) -> list[MLModelSpec]:
    """Every model of `pipeline`: `declared` and the registered ones; a ConfigError if none."""
    found = dict(_registered.get(pipeline, {}))
    for spec in declared:
        found.setdefault(spec.name, spec)
    if not found:
        raise ConfigError(f"pipeline {pipeline!r} has no ML models (its spec declares no ml_models)")
    return list(found.values())

def spec_named(pipeline: str, model: str | None, declared: Sequence[MLModelSpec] = ()) -> list[MLModelSpec]:
    """The pipeline's models, or just the one named `model`."""
    specs = specs_for(pipeline, declared)
    if model is None:
        return specs
    chosen = [s for s in specs if s.name == model]
    if not chosen:
        raise ConfigError(f"pipeline {pipeline!r} has no model {model!r}; its models: {', '.join(s.name for s in specs)}")
    return chosen
