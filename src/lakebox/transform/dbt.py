"""Runs the bundled dbt project in-process (dbtRunner), keeping partial parsing warm.

dbt's own files (profiles, target, logs, partial-parse cache) live under
$LAKEBOX_HOME/dbt, never in the package. Passwords reach dbt only through an
environment variable, never through the generated profiles.yml.

A full parse of the project costs seconds; dbt's partial parsing only helps from a home's
second run. The parse result of the bundled project does not depend on the home, so it is
also kept in the machine-wide cache (LAKEBOX_CACHE_DIR) and seeds every new home. For that
the profile must not name the home: DuckDB is given the file's bare name and dbt runs with
the file's folder as its working directory. dbt itself re-checks the seeded state (its
version, the profile, every project file's checksum) and re-parses whatever differs, so a
stale cache costs a parse, never a wrong build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from lakebox.core_settings import DBT_LOG_LEVEL
from lakebox.errors import TransformError
from lakebox.log import get_logger
from lakebox.settings import redact

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

PROJECT_DIR = Path(__file__).parent / "dbt_project"
PASSWORD_ENV = "LAKEBOX_DBT_PASSWORD"
PARSE_FILE = "partial_parse.msgpack"


@dataclass(frozen=True)
class DbtOutcome:
    models: int
    tests: int
    seconds: float


def profiles_yml(settings: Settings) -> str:
    from lakebox.warehouse.duckdb import MEMORY_LIMIT

    if settings.warehouse_kind == "postgres":
        url = urlsplit(settings.warehouse)
        return (
            "lakebox:\n  target: lakebox\n  outputs:\n    lakebox:\n      type: postgres\n"
            f"      host: {url.hostname or '127.0.0.1'}\n      port: {url.port or 5432}\n"
            f"      user: {unquote(url.username or 'postgres')}\n"
            f"      password: \"{{{{ env_var('{PASSWORD_ENV}', '') }}}}\"\n"
            f"      dbname: {unquote(url.path.lstrip('/') or 'postgres')}\n"
            "      schema: public\n      threads: 2\n      connect_timeout: 5\n"
        )
    if settings.warehouse_kind == "spark":
        # dbt-spark on lakebox's own SparkSession (see warehouse/spark.py). Two threads: each
        # model and test is a Spark job whose driver-side planning and dbt bookkeeping leave
        # the executors idle, so two nodes at a time (a model's tests, independent models)
        # keep them busier: warm builds of orders at 1M, alternated in one process on a
        # 2-core cluster, took 18.5 and 20.6 s with one thread, 13.1 and 18.9 s with two.
        return ("lakebox:\n  target: lakebox\n  outputs:\n    lakebox:\n      type: spark\n"
                "      method: session\n      host: NA\n      schema: default\n      threads: 2\n")
    return (
        "lakebox:\n  target: lakebox\n  outputs:\n    lakebox:\n      type: duckdb\n"
        f"      path: '{duckdb_file(settings).name}'\n      schema: main\n      threads: 1\n"
        f"      settings:\n        memory_limit: '{MEMORY_LIMIT}'\n        preserve_insertion_order: false\n"
    )


def duckdb_file(settings: Settings) -> Path:
    """The DuckDB warehouse file; dbt opens it by bare name from its folder (see module doc)."""
    return Path(settings.warehouse.removeprefix("duckdb://").removeprefix("file://"))


def _dbt_home(settings: Settings) -> Path:
    home = settings.home / "dbt"
    home.mkdir(parents=True, exist_ok=True)
    profiles = home / "profiles.yml"
    text = profiles_yml(settings)
    if not profiles.exists() or profiles.read_text() != text:
        profiles.write_text(text)
    return home


def _password(settings: Settings) -> str:
    if settings.warehouse_kind != "postgres":
        return ""
    return unquote(urlsplit(settings.warehouse).password or "") or settings.env.get("PGPASSWORD", "")


def parse_cache_file(settings: Settings, profile: str) -> Path | None:
    """Where this machine keeps the parse of the bundled project for `profile`, or None."""
    if settings.cache_dir is None:
        return None
    from dbt.version import __version__

    key = hashlib.sha256(f"{__version__}\0{PROJECT_DIR}\0{profile}".encode()).hexdigest()[:20]
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


def _close_dbt_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB handle open after invoke; close it so lakebox can reopen
    the file (DuckDB refuses a second in-process handle with a different configuration)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


PROJECT_SOURCES = ("dbt_project.yml", "models", "macros", "tests")  # what dbt reads; not logs/ or target/
# The files' (path, size, mtime) -> their digest, so unchanged files are not re-read.
_SIGNATURES: dict[tuple[tuple[str, int, int], ...], str] = {}


def project_signature() -> str:
    """A digest of the project's files (names and bytes): changes when a model does. Files
    are re-read only when a name, size or modification time changed."""
    files = sorted(f for name in PROJECT_SOURCES for f in [PROJECT_DIR / name, *(PROJECT_DIR / name).rglob("*")]
                   if f.is_file())
    stats = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if stats not in _SIGNATURES:
        digest = hashlib.sha256()
        for f in files:
            digest.update(f"{f.relative_to(PROJECT_DIR)}\0".encode() + f.read_bytes() + b"\0")
        _SIGNATURES.clear()
        _SIGNATURES[stats] = digest.hexdigest()
    return _SIGNATURES[stats]


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
        "--project-dir", str(PROJECT_DIR),
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
    os.environ[PASSWORD_ENV] = _password(settings)
    cwd = os.getcwd()
    try:
        if settings.warehouse_kind == "duckdb":
            os.chdir(duckdb_file(settings).parent)
        if settings.warehouse_kind == "spark":
            from lakebox.warehouse.spark import spark_session

            spark_session(settings)  # started with lakebox's settings before dbt-spark asks for one
        from lakebox.run_view import dbt_event  # a terminal's "dbt n of N"

        result = dbtRunner(manifest=manifest, callbacks=[dbt_event]).invoke(args)
    finally:
        os.chdir(cwd)
        os.environ.pop(PASSWORD_ENV, None)
        _close_dbt_logs()
        if settings.warehouse_kind == "duckdb":
            _close_dbt_duckdb()
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
    _PARSED[profiles_yml(settings)] = (project_signature(), result.result)
    return time.perf_counter() - t0


def _parsed_manifest(settings: Settings) -> Any:
    """The manifest parse_project kept for this profile; parsed again (partially) first when
    a project file changed since, so a long-lived process builds what is on disk."""
    kept = _PARSED.get(profiles_yml(settings))
    if kept is None:
        return None
    if kept[0] != project_signature():
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
