"""`lakebox check`: every problem of the project at once, before anything runs.

The pipelines' folders and specs (discovery), the settings, every reference a spec makes
(its stages, commands, feeds and models resolve to code), and the one dbt project assembled
from every pipeline's models/: parsed in-process, so a `ref()` or `source()` naming nothing,
broken Jinja or yml is found; the project's own models are compiled too.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lakebox.errors import ConfigError, LakeboxError

if TYPE_CHECKING:
    from lakebox.pipelines.spec import PipelineSpec
    from lakebox.settings import Settings


def project_problems(env: Mapping[str, str] | None = None) -> list[str]:
    """Each problem as one line naming the file or setting and what to do; [] when none."""
    from lakebox.pipelines import discover
    from lakebox.settings import Settings

    try:
        specs = discover(env)
    except ConfigError as exc:
        return _lines(exc)
    problems = raw_table_clashes(specs)
    for spec in specs.values():
        problems += reference_problems(spec)
    try:
        settings = Settings.load(env)
    except ConfigError as exc:
        return problems + _lines(exc)
    return problems + dbt_problems(settings, specs)


def _lines(exc: ConfigError) -> list[str]:
    """One line per problem: a list's heading ("3 problem(s) in pipelines/air/pipeline.toml:",
    as discovery nests a pipeline.toml's problems) is dropped, each problem kept once."""
    first, *rest = str(exc).splitlines()
    if not (rest and first.rstrip().endswith(":")):
        return [str(exc)]
    lines = [line.strip() for line in rest if not _HEADING.match(line.strip())]
    return list(dict.fromkeys(lines))


_HEADING = re.compile(r"^\d+ (pipeline )?problem\(s\)( in .*)?:$")


def raw_table_clashes(specs: Mapping[str, PipelineSpec]) -> list[str]:
    """Two declarative resources whose raw tables are one (`raw.<pipeline>_<resource>`: pipeline
    `air_pm` with resource `x` and pipeline `air` with resource `pm_x`); each pipeline.toml is
    already checked by discovery, so reading it again cannot fail."""
    from lakebox.declarative.config import CONFIG_FILE, load_config

    owners: dict[str, str] = {}
    problems = []
    for spec in specs.values():
        if not spec.folder or not (Path(spec.folder) / CONFIG_FILE).is_file():
            continue
        config = load_config(Path(spec.folder))
        for resource in config.source.resources:
            table, here = config.raw_table(resource), f'{config.path} resource "{resource.name}"'
            if table in owners:
                problems.append(f"{here}: its raw table {table} is also {owners[table]}'s; rename one of the "
                                "resources (a raw table is raw.<pipeline>_<resource>)")
            owners.setdefault(table, here)
    return problems


def reference_problems(spec: PipelineSpec) -> list[str]:
    """What a spec names that cannot be loaded (a stage's function, a command, a feed...)."""
    refs = [s.fn for s in spec.stages] + [c.fn for c in spec.commands] + [spec.demo_feed, spec.waiting_input]
    refs += list(spec.ml_models)
    problems = []
    for ref in refs:
        if ref is None:
            continue
        try:
            spec.resolve(ref)
        except ConfigError as exc:
            problems.append(f"{exc}; fix the reference in {spec.folder}/__init__.py or define it")
        except Exception as exc:  # noqa: BLE001 - importing the module raised: named, whatever it was
            problems.append(f"pipeline {spec.name!r}: {ref!r} cannot be loaded ({type(exc).__name__}: {exc}); "
                            f"fix {spec.folder}")
    page = spec.dashboard_page
    if page is not None:
        name = importlib.util.resolve_name(page.module, spec.package)
        try:
            found = importlib.util.find_spec(name)
        except ImportError:
            found = None
        if found is None:
            problems.append(f"pipeline {spec.name!r}: its dashboard page {page.module!r} is not a module; "
                            f"fix dashboard_page in {spec.folder}/__init__.py")
    return problems


CHECKED_MARK = "checked.signature"  # under <home>/dbt: what the last clean dbt check saw


def dbt_problems(settings: Settings, specs: Mapping[str, PipelineSpec]) -> list[str]:
    """The assembled dbt project parsed (refs, sources, Jinja, yml), and the models of the
    pipelines outside lakebox compiled and their SQL read (a syntax error dbt passes on);
    each failure with the pipeline folder it is in. Skipped when nothing dbt reads (the
    project's files, the profile, the models checked) changed since the last clean check."""
    import hashlib

    from lakebox.pipelines import is_bundled
    from lakebox.transform import dbt

    own = [s for s in specs.values() if not is_bundled(s) and s.dbt_selector]
    selectors = sorted(s.dbt_selector for s in own if s.dbt_selector)
    mark = settings.home / "dbt" / CHECKED_MARK
    seen = hashlib.sha256("\0".join([dbt.project_signature(settings), dbt.profiles_yml(settings), *selectors])
                          .encode()).hexdigest()
    if mark.is_file() and mark.read_text() == seen:
        return []
    try:
        dbt.parse_project(settings)
        if own:
            dbt.compile_models(settings, selectors)
    except LakeboxError as exc:
        return [dbt.in_pipeline_folders(str(exc), specs.values())]
    problems = [dbt.in_pipeline_folders(p, specs.values()) for p in sql_problems(settings, own)]
    if not problems:
        mark.write_text(seen)
    return problems


_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}


def sql_problems(settings: Settings, pipelines: list[PipelineSpec]) -> list[str]:
    """The compiled SQL of these pipelines' models read by sqlglot in the warehouse's dialect:
    dbt compiles Jinja but never reads the SQL, so `selec` or an unclosed parenthesis would
    only fail at run time."""
    import sqlglot

    from lakebox.warehouse.kinds import kind_of

    dialect = _DIALECTS.get(kind_of(settings).name, "duckdb")
    compiled = settings.home / "dbt" / "target" / "compiled" / "lakebox" / "models"
    problems = []
    for spec in pipelines:
        for path in sorted((compiled / spec.name).rglob("*.sql")):
            if not (Path(spec.folder) / "models" / path.relative_to(compiled / spec.name)).is_file():
                continue  # compiled before its model was removed
            try:
                sqlglot.parse(path.read_text(), read=dialect)
            except sqlglot.errors.ParseError as exc:
                where = path.relative_to(compiled.parent)
                first = exc.errors[0] if exc.errors else {}
                problems.append(f"{where}: the SQL does not parse ({dialect}): {first.get('description', exc)} "
                                f"at line {first.get('line', '?')}, near {first.get('highlight', '')!r}; fix the model")
    return problems
