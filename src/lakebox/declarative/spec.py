"""A declarative pipeline's PipelineSpec, built from its `pipeline.toml` and `models/`.

The stages are the shared ones a coded pipeline composes (the REST source or the file
landing, the gate's loader, dbt, snapshots, the ML lifecycle), each given the parsed
config: one engine, configured from TOML. Building a spec imports no source, warehouse or
heavy library (stage functions are `module:function` partials, imported when they run).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakebox import core_settings as core
from lakebox.declarative.config import PipelineConfig, load_config
from lakebox.pipelines.spec import SNAPSHOT, TRANSFORM, DashboardPage, PipelineSpec, Setting, StageSpec
from lakebox.setting_kinds import Url

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.stage import RunContext, StageResult

PAGE_MODULE = "lakebox.declarative.page"
# models/<layer>/*.sql -> the schema its tables are built in (lakebox.transform.assembly)
_BUILT = (("marts", "analytics"), ("ml", "ml"))


def spec_from_folder(folder: Path, fetch: str | None = None, **extra: Any) -> PipelineSpec:
    """The pipeline in `folder` (its pipeline.toml), with `extra` PipelineSpec fields a
    pipeline's own Python adds (a demo feed, commands, a bench scenario); `fetch` names a
    module whose `fetch(ctx, config)` is the fetch stage (e.g. to start a bundled API)."""
    return build_spec(load_config(folder), fetch=fetch, **extra)


def build_spec(config: PipelineConfig, fetch: str | None = None, **extra: Any) -> PipelineSpec:
    rest = config.source.type == "rest"
    first = StageSpec("fetch", _stage(fetch or "lakebox.declarative.rest", "fetch", config)) if rest else \
        StageSpec("land", _stage("lakebox.declarative.files", "land", config))
    stages = [first, StageSpec("load", _stage("lakebox.declarative.load", "load", config))]
    marts = built_tables(config.folder)
    if marts:
        stages += [TRANSFORM, SNAPSHOT]
    models: tuple[Any, ...] = ()
    if config.models:
        from lakebox.declarative.models import model_specs
        from lakebox.declarative.models import stages as model_stages

        models = model_specs(config)
        stages += list(model_stages(config))
    settings = [Setting("policy", "quarantine", "`quarantine`: quarantine a bad batch or file, load the good ones; "
                        "`fail-fast`: stop at the first bad one", kind=core.GATE_POLICY)]
    if rest:
        settings.insert(0, Setting("base_url", config.source.base_url, "the API's base URL (pipeline.toml's "
                                   "source.base_url unless set)", kind=Url()))
    if config.schedule is not None:
        settings.append(Setting("schedule", config.schedule, core.SCHEDULE.doc + " (pipeline.toml's schedule)",
                                kind=core.SCHEDULE.kind))
    fields: dict[str, Any] = {
        "name": config.name,
        "description": config.description or f"declared in {config.path}",
        "stages": tuple(stages),
        "settings": tuple(settings),
        "dbt_selector": f"path:models/{config.name}" if marts else None,
        "marts": marts,
        "sources": tuple(config.ledger_source(r) for r in config.source.resources),
        "dbt_sources": tuple((r.name, config.raw_table(r).partition(".")[2]) for r in config.source.resources),
        "dashboard_page": DashboardPage(PAGE_MODULE, config.name.replace("_", " ").title()),
        "waiting_input": None if rest else _waiting(config),
        "ml_models": models,
        "folder": str(config.folder),
        "declared": config,
    }
    return PipelineSpec(**{**fields, **extra})


def built_tables(folder: Path) -> tuple[str, ...]:
    """`schema.table` of every mart and ML model the folder's models/ builds."""
    return tuple(f"{schema}.{sql.stem}" for layer, schema in _BUILT
                 for sql in sorted((folder / "models" / layer).glob("*.sql")))


def _stage(module: str, function: str, config: PipelineConfig) -> Callable[[RunContext], StageResult]:
    return functools.partial(_call, module, function, config)


def _call(module: str, function: str, config: PipelineConfig, ctx: RunContext) -> StageResult:
    import importlib

    result: StageResult = getattr(importlib.import_module(module), function)(ctx, config)
    return result


def _waiting(config: PipelineConfig) -> Callable[[Settings], object]:
    return functools.partial(_fingerprint, config)


def _fingerprint(config: PipelineConfig, settings: Settings) -> object:
    from lakebox.declarative.files import waiting

    return waiting(settings, config)
