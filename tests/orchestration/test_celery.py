"""LAKEBOX_EXECUTOR=celery: two pipelines run at once through Dagster's Celery executor on
the local RabbitMQ, their steps taken by two `lakebox worker` processes, against a shared
PostgreSQL warehouse (what several machines would share)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.orchestration.conftest import DAGSTER_WARNINGS, drop_days

pytestmark = [*DAGSTER_WARNINGS, pytest.mark.slow, pytest.mark.postgres]
BROKER = os.environ.get("LAKEBOX_TEST_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture(scope="module")
def rabbitmq() -> str:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError as exc:
        service_missing(f"RabbitMQ not reachable on 127.0.0.1:5672: {exc}", "LAKEBOX_REQUIRE_RABBITMQ")
    return BROKER


@pytest.fixture
def workers(rabbitmq: str, lakebox_env: dict[str, str], pg_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    env = {**lakebox_env, "LAKEBOX_WAREHOUSE": pg_url, "LAKEBOX_EXECUTOR": "celery", "LAKEBOX_CELERY_BROKER": rabbitmq,
           "DAGSTER_HOME": str(home / "dagster"), "LAKEBOX_DEMO_ORDERS": "500"}
    names = [f"w{i}-{uuid.uuid4().hex[:6]}" for i in (1, 2)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:  # one after the other, as a user would start them
            log = tmp_path / f"{name}.log"
            with log.open("w") as out:
                procs.append(subprocess.Popen([sys.executable, "-m", "lakebox.cli", "worker", "--name", name], env=env,
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.monotonic() + 120
            while "ready." not in log.read_text():
                assert procs[-1].poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"worker {name} not ready in 120 s:\n{log.read_text()}"
                time.sleep(0.2)
        yield {**env, "WORKER_LOGS": ",".join(str(tmp_path / f"{n}.log") for n in names)}
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_two_pipelines_run_on_two_celery_workers(workers: dict[str, str], generated_drop: Path) -> None:
    import psycopg

    home = Path(workers["LAKEBOX_HOME"])
    drop_days(generated_drop, home / "landing" / "retail", "2025-03-05")
    jobs = [
        ["orders_job"],
        ["retail_job", "--tags", '{"dagster/partition": "2025-03-05"}'],
    ]
    runs = [subprocess.Popen([sys.executable, "-m", "dagster", "job", "execute", "-m", "lakebox.orchestration.dagster",
                              "-j", *job], env=workers, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for job in jobs]
    outputs = [r.communicate(timeout=400)[0] for r in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-4000:]
        assert "celery" in output.lower()
    with psycopg.connect(workers["LAKEBOX_WAREHOUSE"]) as con:
        rows = con.execute("select pipeline, status from ops.pipeline_runs order by pipeline").fetchall()
    assert rows == [("orders", "success"), ("retail", "success")]
    took = [Path(p).read_text().count("lakebox_pipeline") + Path(p).read_text().count("execute_plan")
            for p in workers["WORKER_LOGS"].split(",")]
    assert all(n > 0 for n in took), f"each worker should have taken a step: {took}"
