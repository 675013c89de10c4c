"""pipeline.toml -> PipelineConfig, every problem collected and raised at once."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakebox.declarative.config import (
    CONFIG_FILE,
    AuthConfig,
    CandidateConfig,
    ColumnConfig,
    ContractConfig,
    IncrementalConfig,
    ModelConfig,
    PaginatorConfig,
    PipelineConfig,
    ResourceConfig,
    SourceConfig,
)
from lakebox.errors import ConfigError


class _Problems:
    """Where each problem is (file, key) and what is allowed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.found: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.found.append(f"{self.path}: {key}: {message}")


def parse_config(folder: Path) -> PipelineConfig:
    path = folder / CONFIG_FILE
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    problems = _Problems(path)
    config = _pipeline(folder, doc, problems)
    if problems.found or config is None:
        raise ConfigError(f"{len(problems.found)} problem(s) in {path}:\n  " + "\n  ".join(problems.found))
    return config


def _pipeline(folder: Path, doc: Mapping[str, Any], problems: _Problems) -> PipelineConfig | None:
    source = doc.get("source")
    if not isinstance(source, Mapping):
        problems.add("source", "missing: a [source] table with type = \"rest\" or \"files\"")
        return None
    resources = tuple(_resource(f"source.resources[{i}]", r) for i, r in enumerate(source.get("resources", [])))
    return PipelineConfig(
        name=folder.name,
        folder=folder,
        description=str(doc.get("description", "")),
        schedule=doc.get("schedule"),
        source=SourceConfig(
            type=source.get("type", "rest"),
            resources=resources,
            base_url=source.get("base_url"),
            auth=AuthConfig(**source["auth"]) if "auth" in source else None,
            headers=dict(source.get("headers", {})),
            paginator=_paginator(source.get("paginator")),
            landing=source.get("landing"),
        ),
        models=tuple(_model(m) for m in doc.get("models", [])),
    )


def _paginator(value: Any) -> PaginatorConfig | None:
    if value is None:
        return None
    if isinstance(value, str):
        return PaginatorConfig(type=value)  # type: ignore[arg-type]  # checked by the schema
    return PaginatorConfig(**value)


def _resource(key: str, doc: Mapping[str, Any]) -> ResourceConfig:
    contract = doc.get("contract", {})
    columns = tuple(ColumnConfig(name=name, **{k: tuple(v) if k == "accepted" else v for k, v in rules.items()})
                    for name, rules in contract.get("columns", {}).items())
    incremental = doc.get("incremental")
    plain = {k: v for k, v in doc.items() if k not in ("contract", "paginator", "incremental", "primary_key", "params")}
    return ResourceConfig(
        **plain,
        primary_key=tuple(doc.get("primary_key", ())),
        params=dict(doc.get("params", {})),
        paginator=_paginator(doc.get("paginator")),
        incremental=IncrementalConfig(**incremental) if incremental else None,
        contract=ContractConfig(schema=contract.get("schema", "freeze"), columns=columns),
    )


def _model(doc: Mapping[str, Any]) -> ModelConfig:
    plain = {k: v for k, v in doc.items() if k not in ("from", "features", "key", "candidates")}
    return ModelConfig(
        **plain,
        from_=doc["from"],
        features=tuple(doc["features"]),
        key=tuple(doc["key"]),
        candidates=tuple(CandidateConfig(**c) for c in doc["candidates"]),
    )
