"""The pipelines, one folder each, found by scanning this package: no file lists them.

Every sub-package here, in the project's `pipelines/` (lakebox.project) and in the folders
of LAKEBOX_PIPELINES_PATH whose `__init__.py` declares `SPEC`, and every folder there holding
a `pipeline.toml` (a declarative pipeline, lakebox.declarative), is a pipeline named after its
folder; a project's `pipelines = [...]` keeps only the pipelines it names. Only the specs
are imported to find them, so discovery costs milliseconds; a pipeline's stages are
imported when it runs (`get_pipeline`). Every broken pipeline is reported at once, each
with its folder and what to fix. See docs/pipelines.md.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from lakebox.declarative.config import CONFIG_FILE
from lakebox.errors import ConfigError
from lakebox.pipelines.spec import PipelineSpec
from lakebox.project import PIPELINES_KEY, find_project

if TYPE_CHECKING:
    from lakebox.runner import Pipeline

PATH_ENV = "LAKEBOX_PIPELINES_PATH"
_BUNDLED = tuple(__path__)


def discover(env: Mapping[str, str] | None = None) -> dict[str, PipelineSpec]:
    """Every pipeline's spec by name, in name order: the bundled ones, the project's and
    those in the folders of LAKEBOX_PIPELINES_PATH (os.pathsep-separated)."""
    env = os.environ if env is None else env
    extra = tuple(p for p in env.get(PATH_ENV, "").split(os.pathsep) if p.strip())
    project = find_project(env)
    if project is not None and project.pipelines_dir.is_dir():
        extra += (str(project.pipelines_dir),)
    found = dict(_discover(extra))
    if project is None or project.enabled is None:
        return found
    missing = [name for name in project.enabled if name not in found]
    if missing:
        raise ConfigError(f"{project.config}: {PIPELINES_KEY} names {', '.join(map(repr, missing))}, which no "
                          f"folder holds; pipelines found: {', '.join(found) or 'none'}; fix the list, or add "
                          f"{project.pipelines_dir}/<name>/pipeline.toml (or __init__.py declaring SPEC)")
    return {name: spec for name, spec in found.items() if name in project.enabled}


@functools.cache
def _discover(extra: tuple[str, ...]) -> tuple[tuple[str, PipelineSpec], ...]:
    problems = [f"{PATH_ENV}: {folder} is not a folder; it should hold one folder per pipeline"
                for folder in extra if not Path(folder).is_dir()]
    for folder in extra:
        if folder not in __path__ and Path(folder).is_dir():
            __path__.append(folder)  # so that `lakebox.pipelines.<name>` imports from there
    found: dict[str, str] = {}
    specs = []
    for folder in (*_BUNDLED, *extra):
        coded = {info.name for info in pkgutil.iter_modules([folder]) if info.ispkg}
        declared = {p.parent.name for p in Path(folder).glob(f"*/{CONFIG_FILE}")} - coded
        for name in sorted(coded | declared):
            if name in found:
                problems.append(f"pipeline folder {folder}/{name} has the name of {found[name]}/{name}; "
                                "rename one of them (a pipeline's name is its folder's)")
                continue
            found[name] = folder
            try:
                specs.append((name, _spec(folder, name) if name in coded else _declared(folder, name)))
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        raise ConfigError(f"{len(problems)} pipeline problem(s):\n  " + "\n  ".join(problems))
    return tuple(sorted(specs))


def _spec(folder: str, name: str) -> PipelineSpec:
    where = f"pipeline folder {folder}/{name}"
    module_name = f"{__name__}.{name}"
    loaded = sys.modules.get(module_name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").parent != Path(folder) / name:
        for key in [k for k in sys.modules if k == module_name or k.startswith(f"{module_name}.")]:
            del sys.modules[key]  # another project's pipeline of this name, imported earlier in this process
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a broken pipeline is named, whatever it raised
        raise ConfigError(f"{where} cannot be imported: {type(exc).__name__}: {exc}; fix its __init__.py") from exc
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, PipelineSpec):
        raise ConfigError(f"{where}: its __init__.py declares no SPEC = PipelineSpec(...); see docs/pipelines.md")
    if spec.name != name:
        raise ConfigError(f"{where}: SPEC is named {spec.name!r}; a pipeline's name is its folder's ({name!r})")
    spec = dataclasses.replace(spec, package=module.__name__, folder=str(Path(folder) / name))
    spec.check()
    return spec


def _declared(folder: str, name: str) -> PipelineSpec:
    """A folder with pipeline.toml and no __init__.py: a declarative pipeline."""
    from lakebox.declarative.spec import spec_from_folder

    spec = spec_from_folder(Path(folder) / name)
    spec.check()
    return spec


def is_bundled(spec: PipelineSpec) -> bool:
    """Whether the pipeline ships with lakebox (not a project's, nor LAKEBOX_PIPELINES_PATH's)."""
    return any(Path(spec.folder).parent == Path(folder) for folder in _BUNDLED)


def get_spec(name: str, env: Mapping[str, str] | None = None) -> PipelineSpec:
    specs = discover(env)
    if name not in specs:
        raise ConfigError(f"unknown pipeline {name!r}; pipelines found: {', '.join(specs) or 'none'} "
                          f"(one folder each under lakebox/pipelines/, a project's pipelines/ or {PATH_ENV})")
    return specs[name]


def get_pipeline(name: str, env: Mapping[str, str] | None = None) -> Pipeline:
    """The named pipeline, ready to run."""
    return get_spec(name, env).pipeline()


class PageFile(NamedTuple):
    path: Path
    title: str
    icon: str
    url_path: str
    default: bool


def dashboard_pages(env: Mapping[str, str] | None = None) -> list[PageFile]:
    """The pipelines' dashboard pages as files, the default page first."""
    pages = []
    for spec in discover(env).values():
        page = spec.dashboard_page
        if page is None:
            continue
        found = importlib.util.find_spec(importlib.util.resolve_name(page.module, spec.package))
        if found is None or found.origin is None:
            raise ConfigError(f"pipeline {spec.name!r}: its dashboard page {page.module!r} is not a module file")
        pages.append(PageFile(Path(found.origin), page.title, page.icon, spec.name, page.default))
    return sorted(pages, key=lambda p: not p.default)
