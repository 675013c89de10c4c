"""Which models each pipeline has: the `ml_models` its spec declares (imported only when
asked for), plus any registered at run time with `register_spec` (tests, notebooks)."""

from __future__ import annotations

from lakebox.errors import ConfigError
from lakebox.ml.spec import MLModelSpec

_registered: dict[str, dict[str, MLModelSpec]] = {}


def register_spec(spec: MLModelSpec) -> MLModelSpec:
    _registered.setdefault(spec.pipeline, {})[spec.name] = spec
    return spec


def _declared(pipeline: str) -> list[MLModelSpec]:
    from lakebox.pipelines import discover

    spec = discover().get(pipeline)
    return [spec.resolve(ref) for ref in spec.ml_models] if spec else []


def specs_for(pipeline: str) -> list[MLModelSpec]:
    """Every model of `pipeline`; a ConfigError naming the pipelines that have models if none."""
    from lakebox.pipelines import discover

    found = dict(_registered.get(pipeline, {}))
    for spec in _declared(pipeline):
        found.setdefault(spec.name, spec)
    if not found:
        known = sorted({*(name for name, s in discover().items() if s.ml_models), *_registered})
        raise ConfigError(f"pipeline {pipeline!r} has no ML models; pipelines with models: {', '.join(known) or 'none'}")
    return list(found.values())


def spec_named(pipeline: str, model: str | None) -> list[MLModelSpec]:
    """The pipeline's models, or just the one named `model`."""
    specs = specs_for(pipeline)
    if model is None:
        return specs
    chosen = [s for s in specs if s.name == model]
    if not chosen:
        raise ConfigError(f"pipeline {pipeline!r} has no model {model!r}; its models: {', '.join(s.name for s in specs)}")
    return chosen
