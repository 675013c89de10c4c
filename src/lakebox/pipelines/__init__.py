"""The pipelines, one folder each, found by scanning this package: no file lists them.

Every sub-package here (and in the folders of LAKEBOX_PIPELINES_PATH, for pipelines kept
outside lakebox) whose `__init__.py` declares `SPEC` is a pipeline named after its folder.
Only the specs are imported to find them, so discovery costs milliseconds; a pipeline's
stages are imported when it runs (`get_pipeline`). See docs/pipelines.md.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import os
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from lakebox.errors import ConfigError
from lakebox.pipelines.spec import PipelineSpec

if TYPE_CHECKING:
    from lakebox.runner import Pipeline

PATH_ENV = "LAKEBOX_PIPELINES_PATH"
_BUNDLED = tuple(__path__)


def discover(env: Mapping[str, str] | None = None) -> dict[str, PipelineSpec]:
    """Every pipeline's spec by name, in name order: the bundled ones and those in the
    folders of LAKEBOX_PIPELINES_PATH (os.pathsep-separated)."""
    extra = (os.environ if env is None else env).get(PATH_ENV, "")
    return dict(_discover(tuple(p for p in extra.split(os.pathsep) if p.strip())))


@functools.cache
def _discover(extra: tuple[str, ...]) -> tuple[tuple[str, PipelineSpec], ...]:
    for folder in extra:
        if not Path(folder).is_dir():
            raise ConfigError(f"{PATH_ENV}: {folder} is not a folder; it should hold one folder per pipeline")
        if folder not in __path__:
            __path__.append(folder)  # so that `lakebox.pipelines.<name>` imports from there
    found: dict[str, str] = {}
    specs = []
    for folder in (*_BUNDLED, *extra):
        for info in pkgutil.iter_modules([folder]):
            if not info.ispkg:
                continue
            if info.name in found:
                raise ConfigError(f"pipeline folder {folder}/{info.name} has the name of "
                                  f"{found[info.name]}/{info.name}; rename one of them (a pipeline's name is its folder's)")
            found[info.name] = folder
            specs.append((info.name, _spec(folder, info.name)))
    return tuple(sorted(specs))


def _spec(folder: str, name: str) -> PipelineSpec:
    where = f"pipeline folder {folder}/{name}"
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except Exception as exc:  # a broken pipeline is named, whatever it raised
        raise ConfigError(f"{where} cannot be imported: {type(exc).__name__}: {exc}") from exc
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, PipelineSpec):
        raise ConfigError(f"{where}: its __init__.py declares no SPEC = PipelineSpec(...); see docs/pipelines.md")
    if spec.name != name:
        raise ConfigError(f"{where}: SPEC is named {spec.name!r}; a pipeline's name is its folder's ({name!r})")
    spec = dataclasses.replace(spec, package=module.__name__, folder=str(Path(folder) / name))
    spec.check()
    return spec


def get_spec(name: str, env: Mapping[str, str] | None = None) -> PipelineSpec:
    specs = discover(env)
    if name not in specs:
        raise ConfigError(f"unknown pipeline {name!r}; pipelines found: {', '.join(specs) or 'none'} "
                          f"(one folder each under lakebox/pipelines/ or {PATH_ENV})")
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
