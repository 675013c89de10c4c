"""Which models each pipeline has.

Pipelines name their specs here as "module:attribute" (imported only when asked for), or
call `register_spec` from their own module; the lead's pipeline discovery may fill this
from each `PipelineSpec` instead.
"""

from __future__ import annotations

import importlib

from lakebox.errors import ConfigError
from lakebox.ml.spec import MLModelSpec

# pipeline -> "module:attribute" of each MLModelSpec
SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "github_commits": ("lakebox.ml.commit_classifier:SPEC",),
}
_registered: dict[str, dict[str, MLModelSpec]] = {}


def register_spec(spec: MLModelSpec) -> MLModelSpec:
    _registered.setdefault(spec.pipeline, {})[spec.name] = spec
    return spec


def specs_for(pipeline: str) -> list[MLModelSpec]:
    """Every model of `pipeline`; a ConfigError naming the pipelines that have models if none."""
    found = dict(_registered.get(pipeline, {}))
    for path in SPEC_PATHS.get(pipeline, ()):
        module, attribute = path.split(":", 1)
        spec = getattr(importlib.import_module(module), attribute)
        found.setdefault(spec.name, spec)
    if not found:
        known = sorted({*SPEC_PATHS, *_registered})
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
