"""Where MLflow keeps runs, models and artifacts.

Tracking: `MLFLOW_TRACKING_URI`, else SQLite at `$LAKEBOX_HOME/mlflow.db` (MLflow's
`./mlruns` file store is refused by MLflow 3 unless allowed, and SQLite also holds the
registry). Artifacts: `LAKEBOX_MLFLOW_ARTIFACTS`, else `$LAKEBOX_HOME/mlartifacts`, or
`<lake>/mlartifacts` when the lake is on S3 (then boto3 must be installed, as MLflow
writes S3 artifacts with it). One experiment per model, created with that location.

A store that cannot be used is a `StoreError`: one line naming the store and what to do,
never a traceback or a hang. `connect` checks what it can up front (a `file:` URI, a
SQLite file that is not a database, an http:// server that does not answer within
PROBE_SECONDS), bounds MLflow's HTTP retries and timeouts (unless the user set them), and
`store_errors` turns what MLflow or its database raise later into the same one line.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakebox.errors import ConfigError, LakeboxError, Terminal

if TYPE_CHECKING:
    from lakebox.settings import Settings

# MLflow's own chatter (telemetry, alembic migrations on a new SQLite store) stays out of
# lakebox's JSON-lines logs; warnings still show.
_QUIET_LOGGERS = {"alembic": logging.WARNING, "mlflow": logging.WARNING,
                  # its warning on cloudpickle: chosen on purpose, see MLModelSpec.serialization
                  "mlflow.sklearn": logging.ERROR}
_MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "GIT_PYTHON_REFRESH": "quiet",
               # MLflow's defaults (7 retries, backoff factor 2, 120 s per request) kept a
               # command silent for minutes on a server that was down: a few seconds here
               "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PROBE_SECONDS = 5.0  # an http(s) store that does not answer this soon is reported unreachable
_WHERE = "MLFLOW_TRACKING_URI, or $LAKEBOX_HOME/mlflow.db when it is unset"


class StoreError(LakeboxError, Terminal):
    """The MLflow store cannot be used (lost, damaged, unreachable): a person must act."""


def store_name(settings: Settings) -> str:
    """The store as a user can find it, without any password in its URI."""
    from lakebox.settings import redact

    return redact(tracking_uri(settings), settings.env)


@contextmanager
def store_errors(settings: Settings) -> Iterator[None]:
    """What MLflow, its database or its HTTP client raise inside becomes one StoreError line."""
    try:
        yield
    except LakeboxError:
        raise
    except Exception as exc:
        if not _from_the_store(exc):
            raise
        raise StoreError(f"MLflow store {store_name(settings)} failed: {_first_line(exc)}; {_advice(exc)}") from exc


def _from_the_store(exc: BaseException) -> bool:
    kinds: list[type[BaseException]] = []
    for module, name in (("mlflow.exceptions", "MlflowException"), ("sqlalchemy.exc", "SQLAlchemyError"),
                         ("requests.exceptions", "RequestException")):
        loaded = sys.modules.get(module)  # an exception of a module never imported cannot have been raised
        if loaded is not None:
            kinds.append(getattr(loaded, name))
    return isinstance(exc, tuple(kinds)) or isinstance(exc, sqlite3.Error)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _advice(exc: BaseException) -> str:
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text:
        return "the database is damaged: restore it from a backup, or move it away to start an empty store"
    if "connection" in text or "max retries" in text or "timed out" in text:
        return "start the tracking server, or point MLFLOW_TRACKING_URI at one that answers"
    return f"check that the store ({_WHERE}) is reachable and intact, or restore it from a backup"


def tracking_uri(settings: Settings) -> str:
    return settings.env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{settings.home}/mlflow.db"


def artifact_root(settings: Settings) -> str:
    explicit = settings.env.get("LAKEBOX_MLFLOW_ARTIFACTS")
    if explicit:
        return explicit.rstrip("/")
    if settings.lake.startswith("s3://"):
        return f"{settings.lake.rstrip('/')}/mlartifacts"
    return (settings.home / "mlartifacts").as_uri()


def connect(settings: Settings) -> Any:
    """Point MLflow at this home's store and return an `MlflowClient` for it."""
    for name, value in _MLFLOW_ENV.items():
        os.environ.setdefault(name, value)
    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    try:
        import mlflow
        import sklearn  # noqa: F401
        from mlflow import MlflowClient
    except ImportError as exc:
        raise ConfigError(f"the ML stages need the 'ml' extra ({exc.name} is missing): "
                          "pip install 'lakebox[ml]' (make install does)") from exc

    uri = tracking_uri(settings)
    _refuse_file_store(uri)
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        _new_sqlite_store(path, settings.cache_dir)
        _check_sqlite(path, store_name(settings))
        _drop_stale_stores(path, uri)
    elif uri.startswith(("http://", "https://")):
        _probe(uri, store_name(settings))
    if artifact_root(settings).startswith("s3://"):
        try:
            import boto3  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "the lake is on S3, so MLflow artifacts go to its bucket and need boto3; "
                "pip install boto3, or set LAKEBOX_MLFLOW_ARTIFACTS to a local folder"
            ) from exc
    given = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # MLflow also writes the URIs into os.environ (for its subprocesses); left there, the
    # next Settings.load() in this process would take this home's store for a user's
    # choice, and a process that serves several homes would track them all in the first.
    for name, before in given.items():
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
    with store_errors(settings):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


_seen_files: dict[Path, tuple[int, int]] = {}  # a SQLite store's file as this process last opened it


def _drop_stale_stores(path: Path, uri: str) -> None:
    """MLflow keeps one store per URI, with its open SQLite connections, for the life of the
    process: a file replaced since (deleted, restored) would still be read, or refused as
    read-only, through the old one. A replaced file gets new stores."""
    try:
        found = path.stat()
    except OSError:
        return
    before, _seen_files[path] = _seen_files.get(path), (found.st_dev, found.st_ino)
    if before is None or before == _seen_files[path]:
        return
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
    from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    for registry in (TrackingStoreRegistry, ModelRegistryStoreRegistry):
        clear = getattr(getattr(registry, "_get_store_with_resolved_uri", None), "cache_clear", None)
        if clear is not None:
            clear()
    for store in (TrackingStore, RegistryStore):
        engine = getattr(store, "_engine_map", {}).pop(uri, None)
        if engine is not None:
            engine.dispose()


def _refuse_file_store(uri: str) -> None:
    scheme = uri.partition(":")[0] if ":" in uri else ""
    if scheme in ("file", "") and uri != "databricks":  # a file: URI or a bare path
        raise ConfigError(f"MLFLOW_TRACKING_URI={uri} is MLflow's file store, which MLflow 3 refuses and which "
                          "holds no model registry: set it to sqlite:///PATH/mlflow.db or an http:// tracking "
                          "server, or unset it to use $LAKEBOX_HOME/mlflow.db")


def _check_sqlite(path: Path, name: str) -> None:
    """A file that is not a SQLite database fails here, in milliseconds, not in MLflow."""
    if not path.exists():
        return
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            con.execute("select count(*) from sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise StoreError(f"MLflow store {name} is not a readable SQLite database ({exc}): restore it from a "
                         f"backup, or move it away to start an empty store (lakebox then asks you to restore it "
                         "or `lakebox ml forget` each model it knew)") from exc


def _probe(uri: str, name: str) -> None:
    """An http(s) store must answer (any HTTP status) within PROBE_SECONDS."""
    import httpx

    try:
        httpx.get(f"{uri.rstrip('/')}/health", timeout=PROBE_SECONDS)
    except httpx.HTTPError as exc:
        raise StoreError(f"MLflow store {name} is unreachable ({type(exc).__name__}: {exc or 'no answer'}) "
                         f"within {PROBE_SECONDS:.0f} s: start the tracking server, or point MLFLOW_TRACKING_URI "
                         "at one that answers") from exc


def _new_sqlite_store(path: Path, cache_dir: Path | None) -> None:
    """Give a new home a ready SQLite store: MLflow builds one by replaying ~60 alembic
    migrations (4-12 s here), so the empty store is built once per MLflow version in the
    machine-wide cache and copied."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if cache_dir is None:
        return
    import mlflow
    from mlflow import MlflowClient

    template = cache_dir / "mlflow" / f"empty-{mlflow.__version__}.db"
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        building = template.with_name(f"{template.name}.{os.getpid()}.tmp")
        MlflowClient(tracking_uri=f"sqlite:///{building}")  # builds the tables
        os.replace(building, template)
    shutil.copyfile(template, path)


def experiment_id(client: Any, settings: Settings, name: str) -> str:
    """The experiment named `name`, created with its artifacts under `artifact_root`."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=f"{artifact_root(settings)}/{name}"))


@functools.cache
def git_commit() -> str | None:
    """The commit lakebox runs from: LAKEBOX_GIT_COMMIT (images), else git, else unknown."""
    if os.environ.get("LAKEBOX_GIT_COMMIT"):
        return os.environ["LAKEBOX_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
