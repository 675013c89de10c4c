"""What a pipeline declares about itself, so that no shared file lists pipelines.

A pipeline is one folder, `lakebox/pipelines/<name>/`, whose `__init__.py` holds
`SPEC = PipelineSpec(...)`. The spec names code by reference, `"module:attribute"` (relative
to the pipeline's package when it starts with a dot), so finding every pipeline, as
`lakebox --help` does, imports no stage, source or heavy library: a reference is imported
when it is used. See docs/pipelines.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakebox.core_settings import EVERY_PIPELINE
from lakebox.errors import ConfigError
from lakebox.setting_kinds import TEXT, Kind

if TYPE_CHECKING:
    from lakebox.runner import Pipeline, Stage
    from lakebox.settings import Settings

# "module:attribute" (a leading dot: relative to the pipeline's package), or the object itself
Ref = str | Callable[..., Any]

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Setting:
    """One setting a pipeline reads: `LAKEBOX_<PIPELINE>_<KEY>` in the environment, or `key`
    in the pipeline's `[lakebox.<pipeline>]` table of lakebox.toml (flat: `<pipeline>_<key>`)."""

    key: str
    default: str | None  # None: unset unless given
    doc: str  # one line, for docs/settings.md and `lakebox config`
    env: str = ""  # the environment variable when not LAKEBOX_<PIPELINE>_<KEY>
    secret: bool = False  # accepted only from the environment, never shown
    kind: Kind[Any] = TEXT  # what it may hold (lakebox.setting_kinds), checked when settings load


@dataclass(frozen=True)
class StageSpec:
    """A stage by name; `fn` (a Ref to `fn(ctx: RunContext) -> StageResult | None`) is left out
    for the core's own stages, built from the spec: TRANSFORM and SNAPSHOT."""

    name: str
    fn: Ref | None = None


TRANSFORM = StageSpec("transform")  # dbt build of `dbt_selector`, skipped when nothing new arrived
SNAPSHOT = StageSpec("snapshot")  # the marts as parquet under snapshots/ in the lake
_CORE_STAGES = (TRANSFORM.name, SNAPSHOT.name)


@dataclass(frozen=True)
class Command:
    """A `lakebox <name>` command: `fn` refers to a typer command function (its parameters,
    annotated, are the options). A LakeboxError it raises exits with the error's code."""

    name: str
    fn: Ref


@dataclass(frozen=True)
class DashboardPage:
    """A Streamlit page file, given as the module it is (`lakebox.pipelines.retail.page`,
    or `.page` inside the pipeline's folder); its url is the pipeline's name."""

    module: str
    title: str
    icon: str = ":material/table_chart:"
    default: bool = False  # the page the dashboard opens on


@dataclass(frozen=True)
class DemoInput:
    """What a demo feed prepared: the pipeline's settings for the demo's run (e.g. the URL of
    an API served in-process) and a line telling the user what it did."""

    settings: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline as the core sees it: what to run, what it reads, what it builds and shows.

    stages         in order; the pipeline's own (StageSpec(name, ref)) and the core's
                   TRANSFORM and SNAPSHOT, built from dbt_selector, sources and marts
    settings       what it reads, namespaced under its name (see Setting)
    dbt_selector   its models, e.g. "path:models/orders": its folder's models/ as lakebox's one
                   dbt project holds it (models/<name>/{staging,marts,ml}, see transform/assembly)
    marts          the `schema.table`s it builds: counted, snapshotted, checked to exist
    sources        the ledger sources (ops.batches) whose new loads make the marts stale
    dashboard_page its page in `lakebox dashboard`, if any
    commands       its own `lakebox` commands (e.g. orders-api)
    demo_feed      Ref to `feed(settings) -> context manager of DemoInput`: how `lakebox demo`
                   gives it input offline
    waiting_input  Ref to `fingerprint(settings) -> object`: what is waiting for it (e.g. a
                   landing folder's listing), for `lakebox watch` to run it when that changed
                   and stayed still; None: fed by polling a source, run every --every seconds
    ml_models      Refs to its `lakebox.ml.MLModelSpec`s: what `lakebox ml ... PIPELINE` and
                   the stages from `lakebox.ml.stages` (predict, train, drift) work on
    bench          Ref to its `lakebox.bench.scenario.BenchScenario`, kept in its folder
                   (e.g. "bench:SCENARIO"): what `lakebox bench` times of it
    dbt_sources    (name, raw table) pairs the assembled dbt project declares as source
                   `<pipeline>.<name>` in schema raw (a declarative pipeline's resources;
                   a coded pipeline writes its own sources.yml)
    declared       the parsed pipeline.toml of a declarative pipeline (lakebox.declarative)
    """

    name: str
    description: str
    stages: tuple[StageSpec, ...]
    settings: tuple[Setting, ...] = ()
    dbt_selector: str | None = None
    marts: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    dashboard_page: DashboardPage | None = None
    commands: tuple[Command, ...] = ()
    demo_feed: Ref | None = None
    waiting_input: Ref | None = None
    ml_models: tuple[Ref, ...] = ()
    bench: Ref | None = None
    package: str = ""  # where relative references resolve; discovery sets it
    folder: str = ""  # the pipeline's folder (its models/, macros/, data_tests/); discovery sets it
    dbt_sources: tuple[tuple[str, str], ...] = ()
    declared: Any = field(default=None, compare=False, hash=False)  # a declarative.config.PipelineConfig

    def __post_init__(self) -> None:
        named = tuple(s if s.env else dataclasses.replace(s, env=f"LAKEBOX_{self.name}_{s.key}".upper())
                      for s in self.settings)
        object.__setattr__(self, "settings", named)

    def check(self) -> None:
        """Raise ConfigError for what would only fail later, at run time; imports nothing."""
        where = f"pipeline {self.name!r} ({self.package or 'no package'})"
        problems = []
        keys = [s.key for s in self.settings]
        problems += [f"setting key {k!r} is not lower_snake_case" for k in keys if not _KEY.match(k)]
        problems += [f"setting {k!r} is declared twice" for k in sorted({k for k in keys if keys.count(k) > 1})]
        problems += [f"setting {s.key!r} is one the core reads for every pipeline; rename it" for s in self.settings
                     if s.key in EVERY_PIPELINE and s.kind is not EVERY_PIPELINE[s.key].kind]  # same kind: a new default
        names = [s.name for s in self.stages]
        problems += [f"stage {n!r} is declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
        for stage in self.stages:
            if stage.fn is None and stage.name not in _CORE_STAGES:
                problems.append(f"stage {stage.name!r} has no function (only {', '.join(_CORE_STAGES)} are built in)")
        if TRANSFORM.name in names and not (self.dbt_selector and self.marts and self.sources):
            problems.append("the transform stage needs dbt_selector, marts and sources")
        if SNAPSHOT.name in names and not self.marts:
            problems.append("the snapshot stage needs marts")
        refs = [s.fn for s in self.stages] + [c.fn for c in self.commands] + [self.demo_feed, self.waiting_input, self.bench]
        refs += list(self.ml_models)
        problems += [f"reference {r!r} is not 'module:attribute'" for r in refs
                     if isinstance(r, str) and not re.fullmatch(r"\.?[\w.]+:\w+", r)]
        if problems:
            raise ConfigError(f"{where}: " + "; ".join(problems) + "; see docs/pipelines.md")

    def resolve(self, ref: Ref) -> Any:
        """The object a reference names, imported now."""
        if not isinstance(ref, str):
            return ref
        module, _, attribute = ref.partition(":")
        try:
            return getattr(importlib.import_module(module, self.package or None), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"pipeline {self.name!r}: {ref!r} cannot be loaded ({exc})") from exc

    def pipeline(self, stages: tuple[str, ...] | None = None) -> Pipeline:
        """The runnable pipeline (all stages, or the named ones), its code imported now."""
        from lakebox.runner import Pipeline

        chosen = [s for s in self.stages if stages is None or s.name in stages]
        waiting = self.resolve(self.waiting_input) if self.waiting_input is not None else None
        return Pipeline(self.name, tuple(self._stage(s) for s in chosen), self.description, waiting)

    def _stage(self, stage: StageSpec) -> Stage:
        from lakebox.runner import Stage

        if stage.fn is not None:
            return Stage(stage.name, self.resolve(stage.fn))
        if stage.name == TRANSFORM.name:
            from lakebox.transform import transform_stage

            assert self.dbt_selector is not None  # check() made sure
            return transform_stage(self.dbt_selector, self.sources, self.marts)
        from lakebox.transform import snapshot_stage

        return snapshot_stage(self.marts)

    def demo_input(self, settings: Settings) -> AbstractContextManager[DemoInput]:
        """The demo feed's input for one run (nothing to prepare when it declares none)."""
        if self.demo_feed is None:
            return nullcontext(DemoInput())
        feed: Callable[[Settings], AbstractContextManager[DemoInput]] = self.resolve(self.demo_feed)
        return feed(settings)

