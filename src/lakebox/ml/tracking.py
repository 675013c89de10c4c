"""Where MLflow keeps runs, models and artifacts.

Tracking: `MLFLOW_TRACKING_URI`, else SQLite at `$LAKEBOX_HOME/mlflow.db` (MLflow's
`./mlruns` file store is refused by MLflow 3 unless allowed, and SQLite also holds the
registry). Artifacts: `LAKEBOX_MLFLOW_ARTIFACTS`, else `$LAKEBOX_HOME/mlartifacts`, or
`<lake>/mlartifacts` when the lake is on S3 (then boto3 must be installed, as MLflow
writes S3 artifacts with it). One experiment per model, created with that location.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakebox.errors import ConfigError

if TYPE_CHECKING:
    from lakebox.settings import Settings

# MLflow's own chatter (telemetry, alembic migrations on a new SQLite store) stays out of
# lakebox's JSON-lines logs; warnings still show.
_QUIET_LOGGERS = {"alembic": logging.WARNING, "mlflow": logging.WARNING,
                  # its warning on cloudpickle: chosen on purpose, see MLModelSpec.serialization
                  "mlflow.sklearn": logging.ERROR}
_MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "GIT_PYTHON_REFRESH": "quiet"}


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
    if uri.startswith("sqlite:///"):
        _new_sqlite_store(Path(uri.removeprefix("sqlite:///")), settings.cache_dir)
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
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


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
