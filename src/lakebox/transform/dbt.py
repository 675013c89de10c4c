"""Runs lakebox's dbt project in-process (dbtRunner), keeping partial parsing warm.

The project is assembled from the discovered pipelines' folders (transform/assembly) at
$LAKEBOX_HOME/dbt/project; dbt's own files (profiles, target, logs, partial-parse cache)
live beside it, never in the package. Passwords reach dbt only through an
environment variable, never through the generated profiles.yml.

A full parse of the project costs seconds; dbt's partial parsing only helps from a home's
second run. The parse result of a set of pipelines does not depend on the home, so it is
also kept in the machine-wide cache (LAKEBOX_CACHE_DIR), keyed by the project's files, and
seeds every new home of the same pipelines. For that
the profile must not name the home: DuckDB is given the file's bare name and dbt runs with
the file's folder as its working directory. dbt itself re-checks the seeded state (its
version, the profile, every project file's checksum) and re-parses whatever differs, so a
stale cache costs a parse, never a wrong build.

Each warehouse writes its own profile and says what runs around a dbt command (its working
directory, a session to start, handles to close after): lakebox.warehouse.kinds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lakebox.core_settings import DBT_LOG_LEVEL
from lakebox.errors import ConfigError, TransformError
from lakebox.log import get_logger
from lakebox.settings import redact
from lakebox.transform import assembly
from lakebox.warehouse.kinds import DBT_PASSWORD_ENV, kind_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from lakebox.pipelines.spec import PipelineSpec
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

PARSE_FILE = "partial_parse.msgpack"


@dataclass(frozen=True)
class DbtOutcome:
    models: int
    tests: int
    seconds: float


def profiles_yml(settings: Settings) -> str:
    """dbt's profiles.yml for the configured warehouse, as the warehouse describes itself."""
    return kind_of(settings).dbt_profile(settings)


def _dbt_home(settings: Settings) -> Path:
    home = settings.home / "dbt"
    home.mkdir(parents=True, exist_ok=True)
    profiles = home / "profiles.yml"
    text = profiles_yml(settings)
    if not profiles.exists() or profiles.read_text() != text:
        profiles.write_text(text)
    return home


def project_dir(settings: Settings) -> Path:
    """The home's dbt project, assembled now from the pipelines discovered with its settings."""
    from lakebox.settings import discovered_pipelines

    specs = cast("Mapping[str, PipelineSpec]", discovered_pipelines(settings.env))  # set to pipelines.discover
    return assembly.assemble(settings.home / "dbt" / "project", list(specs.values()))


def project_signature(settings: Settings) -> str:
    """A digest of what dbt reads of the home's project: changes when a model does."""
    return assembly.signature(project_dir(settings))


def parse_cache_file(settings: Settings, profile: str) -> Path | None:
    """Where this machine keeps the parse of this set of pipelines' project for `profile`, or None."""
    if settings.cache_dir is None:
        return None
    from dbt.version import __version__

    key = hashlib.sha256(f"{__version__}\0{project_signature(settings)}\0{profile}".encode()).hexdigest()[:20]
    return settings.cache_dir / "dbt-parse" / f"{key}.msgpack"


def seed_parse(target: Path, cached: Path | None) -> None:
    """Give a home without a parse of its own the machine's cached one; best effort."""
    local = target / PARSE_FILE
    if cached is None or local.exists() or not cached.exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(cached, local)
    except OSError as exc:
        get_logger().debug("dbt parse not seeded", cache=str(cached), error=str(exc))


def keep_parse(target: Path, cached: Path | None) -> None:
    """Share this home's (newer) parse with the machine cache, atomically; best effort."""
    local = target / PARSE_FILE
    if cached is None or not local.exists():
        return
    try:
        if cached.exists() and cached.stat().st_mtime >= local.stat().st_mtime:
            return
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        shutil.copyfile(local, tmp)
        os.replace(tmp, cached)
    except OSError as exc:
        get_logger().debug("dbt parse not cached", cache=str(cached), error=str(exc))


def _close_dbt_logs() -> None:
    """dbt drops its log file handlers at the next invocation without closing them; close
    them after each one so a long-lived process does not leak a file per build."""
    from dbt_common.events.event_manager_client import get_event_manager

    for logger in get_event_manager().loggers:
        python_logger = getattr(logger, "_python_logger", None)
        for handler in getattr(python_logger, "handlers", []):
            handler.close()


# profile text -> (project signature, parsed manifest): what a long-lived process (`lakebox
# watch`) parsed once, reused by every build while neither the profile nor a file changes.
_PARSED: dict[str, tuple[str, Any]] = {}


def _cheap_behavior_flag_source() -> None:
    """dbt names the module behind each adapter behaviour flag with `inspect.stack()`, which
    reads the source file of every frame and scans every loaded module: 0.15-0.4 s of each
    dbt command here, for a name only shown in a deprecation notice. The same name comes from
    the frames' globals without touching a file (installed once per process)."""
    import sys

    from dbt_common import behavior_flags

    rendered = behavior_flags.BehaviorFlagRendered
    if getattr(rendered._default_source, "lakebox", False):
        return

    def default_source() -> str:
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_globals.get("__name__")
            if name and name != behavior_flags.__name__:
                return str(name)
            frame = frame.f_back  # type: ignore[assignment]
        return "Unknown"

    default_source.lakebox = True  # type: ignore[attr-defined]
    rendered._default_source = staticmethod(default_source)  # type: ignore[method-assign]


def _invoke(settings: Settings, command: str, extra: Sequence[str], manifest: Any = None) -> tuple[Any, Path]:
    """One in-process dbt command with lakebox's profile, paths and parse cache."""
    from dbt.cli.main import dbtRunner

    _cheap_behavior_flag_source()

    home = _dbt_home(settings)
    target = home / "target"
    cached = parse_cache_file(settings, profiles_yml(settings))
    seed_parse(target, cached)
    args = [
        command,
        "--project-dir", str(project_dir(settings)),
        "--profiles-dir", str(home),
        "--target-path", str(target),
        "--log-path", str(home / "logs"),
        *extra,
        "--quiet",
        # dbt's debug lines cost ~10% of a small build; warnings and failures still land
        "--log-level-file", DBT_LOG_LEVEL.read(settings.env),
        "--no-use-colors",
        "--partial-parse",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-write-json",
    ]
    kind = kind_of(settings)
    os.environ[DBT_PASSWORD_ENV] = kind.dbt_password(settings)
    try:
        with kind.around_dbt(settings):  # e.g. DuckDB's folder as the working directory, Spark's session
            from lakebox.run_view import dbt_event  # a terminal's "dbt n of N"

            result = dbtRunner(manifest=manifest, callbacks=[dbt_event]).invoke(args)
    finally:
        os.environ.pop(DBT_PASSWORD_ENV, None)
        _close_dbt_logs()
    if result.exception is not None and not isinstance(result.exception, Exception):
        raise result.exception  # dbtRunner hands back even Ctrl-C and SIGTERM (RunInterrupted): pass them on
    keep_parse(target, cached)
    if result.exception is not None:
        raise TransformError(f"dbt {command} could not run: {redact(str(result.exception))}")
    return result, home


def parse_project(settings: Settings) -> float:
    """Import dbt and parse the project now, and keep the manifest for later builds in this
    process: what a long-lived runner does once so that each build starts warm. Seconds taken."""
    import time

    t0 = time.perf_counter()
    result, home = _invoke(settings, "parse", [])
    if not result.success or result.result is None:
        raise TransformError("dbt parse failed: see " + str(home / "logs" / "dbt.log"))
    _PARSED[profiles_yml(settings)] = (project_signature(settings), result.result)
    return time.perf_counter() - t0


def _parsed_manifest(settings: Settings) -> Any:
    """The manifest parse_project kept for this profile; parsed again (partially) first when
    a project file changed since, so a long-lived process builds what is on disk."""
    kept = _PARSED.get(profiles_yml(settings))
    if kept is None:
        return None
    if kept[0] != project_signature(settings):
        get_logger().info("dbt project changed since it was parsed: parsing again")
        parse_project(settings)
        kept = _PARSED[profiles_yml(settings)]
    return kept[1]


def run_dbt(
    settings: Settings,
    warehouse: Warehouse,
    select: Sequence[str],
    command: str = "build",
    full_refresh: bool = False,
) -> DbtOutcome:
    """`dbt build --select ...` in-process; raises TransformError naming each failed node."""
    import time

    log = get_logger()
    warehouse.release()  # DuckDB allows one writer; dbt opens its own connection
    t0 = time.perf_counter()
    result, home = _invoke(settings, command, ["--select", *select, *(["--full-refresh"] if full_refresh else [])],
                           manifest=_parsed_manifest(settings))
    seconds = time.perf_counter() - t0
    nodes = list(result.result or [])
    failures = [r for r in nodes if str(r.status).lower() in ("error", "fail", "runtime error")]
    if failures or not result.success:
        lines = [f"{r.node.resource_type} {r.node.name}: {redact(str(r.message))}" for r in failures]
        raise TransformError(
            "dbt build failed:\n  " + ("\n  ".join(lines) or "see " + str(home / "logs" / "dbt.log"))
        )
    models = [r for r in nodes if r.node.resource_type == "model"]
    tests = [r for r in nodes if r.node.resource_type == "test"]
    log.info("dbt build done", models=len(models), tests=len(tests), seconds=round(seconds, 2))
    return DbtOutcome(len(models), len(tests), seconds)


def compile_models(settings: Settings, select: Sequence[str]) -> None:
    """`dbt compile --select ...` in-process; raises TransformError naming each failed node."""
    result, home = _invoke(settings, "compile", ["--select", *select], manifest=_parsed_manifest(settings))
    failures = [r for r in result.result or [] if str(r.status).lower() in ("error", "fail", "runtime error")]
    if failures or not result.success:
        lines = [f"{r.node.resource_type} {r.node.name} ({r.node.original_file_path}): {redact(str(r.message))}"
                 for r in failures]
        raise TransformError("dbt compile failed:\n  " + ("\n  ".join(lines) or "see " + str(home / "logs" / "dbt.log")))


def in_pipeline_folders(text: str, specs: Iterable[PipelineSpec]) -> str:
    """dbt's message with each `models/<pipeline>/` path shown as the pipeline's own folder."""
    for spec in specs:
        for part, where in assembly.PARTS.items():
            if spec.folder:
                text = text.replace(f"{where}/{spec.name}/", f"{spec.folder}/{part}/")
    return text


PARSED_MARK = "parsed.signature"  # under <home>/dbt: the project digest last parsed without error


def parse_before_run(settings: Settings, specs: Iterable[PipelineSpec]) -> None:
    """Refuse (ConfigError, exit 2) a dbt project that does not parse before anything runs,
    naming the file: parsed only when its files changed since the last good parse, and the
    parse is kept for this process's builds, so it costs no second parse."""
    mark = settings.home / "dbt" / PARSED_MARK
    signature = project_signature(settings)
    if mark.is_file() and mark.read_text() == signature:
        return
    try:
        parse_project(settings)
    except TransformError as exc:
        raise ConfigError(in_pipeline_folders(str(exc), specs) + "\nfix the model or yml named above "
                          "(`lakebox check` lists every problem); nothing ran") from exc
    mark.write_text(signature)
