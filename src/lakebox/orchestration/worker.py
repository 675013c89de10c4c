"""`lakebox worker`: a Dagster Celery worker, and the executor settings the jobs share.

With `LAKEBOX_EXECUTOR=celery`, every step of a run is a Celery task on the broker at
`LAKEBOX_CELERY_BROKER` (e.g. RabbitMQ), taken by any `lakebox worker` on this or another
machine that shares the warehouse (PostgreSQL), the lake (S3) and DAGSTER_HOME's storage.
This is Dagster's own Celery executor (dagster-celery), not a home-made queue.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lakebox.core_settings import CELERY_BACKEND, CELERY_BROKER, EXECUTOR
from lakebox.settings import Settings


def executor_kind() -> str:
    """`in-process` or `celery` (LAKEBOX_EXECUTOR, from the environment or lakebox.toml)."""
    return EXECUTOR.read(Settings.load().env)


def celery_config() -> dict[str, str]:
    """The broker and result backend, for the executor and the workers alike."""
    env = Settings.load().env
    return {"broker": CELERY_BROKER.read(env), "backend": CELERY_BACKEND.read(env)}


def worker_command(name: str, concurrency: int) -> list[str]:
    """What `dagster-celery worker start` runs (the broker settings come on PYTHONPATH)."""
    return [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--prefetch-multiplier=1",
            "--loglevel", "INFO", "-n", f"{name}@%h", "--concurrency", str(concurrency), "--without-gossip",
            "--without-mingle"]


def write_celery_config(folder: Path) -> Path:
    """The `dagster_celery_config` module dagster-celery's app reads its broker from."""
    folder.mkdir(parents=True, exist_ok=True)
    config = celery_config()
    (folder / "dagster_celery_config.py").write_text(
        f"broker_url = {config['broker']!r}\nresult_backend = {config['backend']!r}\n")
    return folder


def worker(
    name: Annotated[str, typer.Option(help="worker name (unique per machine)")] = "lakebox",
    concurrency: Annotated[int, typer.Option(min=1, help="steps run at once by this worker")] = 1,
) -> None:
    """Start a Dagster Celery worker for LAKEBOX_EXECUTOR=celery runs (broker: LAKEBOX_CELERY_BROKER)."""
    from lakebox.orchestration.home import dagster_environment, init_storage
    from lakebox.settings import Settings, redact

    settings = Settings.load()
    env = dagster_environment(settings)
    init_storage(Path(env["DAGSTER_HOME"]))
    folder = write_celery_config(Path(env["DAGSTER_HOME"]) / "celery" / name)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    typer.echo(f"lakebox worker {name}: broker {redact(celery_config()['broker'])}", err=True)
    os.execvpe(sys.executable, worker_command(name, concurrency), env)
