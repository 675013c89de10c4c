"""The bundled pipelines, one folder each. Looked up by name and imported only when run."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.runner import Pipeline

# name -> module holding `PIPELINE`
REGISTRY: dict[str, str] = {
    "orders": "lakebox.pipelines.orders.pipeline",
    "retail": "lakebox.pipelines.retail.pipeline",
}


def get_pipeline(name: str) -> Pipeline:
    from lakebox.errors import ConfigError

    if name not in REGISTRY:
        raise ConfigError(f"unknown pipeline {name!r}; bundled pipelines: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).PIPELINE
