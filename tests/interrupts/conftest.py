"""The kit of the SIGTERM tests (test_sigterm*.py): SIGTERM (and Ctrl-C, and SIGKILL) to a
real `lakebox run` in each stage of orders and retail, on DuckDB and PostgreSQL: the process
exits 143, the run and the stage are recorded as failed ("interrupted by SIGTERM"), no batch
is half loaded, the lock is free, and the next run builds the same marts as a run never
interrupted.

The test stops the child where it wants it: inside a stage held by `stuck_child.py` (a batch
landed but not in the ledger, a load transaction half written, one snapshot of several
written), or at the "stage started" line of the JSON-lines log for the stages that take
seconds of their own (dbt's transform)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from lakebox.locks import exclusive
from lakebox.pipelines import get_spec
from lakebox.pipelines.orders.api import create_app, serve_in_thread
from tests.conftest import fresh_database, run_cli

CHILD = Path(__file__).with_name("stuck_child.py")
ORDERS = "orders"
RETAIL = "retail"
INTERRUPTED = "interrupted by SIGTERM"


# ------------------------------------------------------------------ the child and the warehouse
_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_child_left() -> Iterator[None]:
    """A child the test did not stop (it failed first) is killed, not left waiting on stdin."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()


class Child:
    """A `lakebox run` in its own process; its stderr read line by line on a thread."""

    def __init__(self, point: str, pipeline: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), point, "run", pipeline], env=env, cwd=env.get("PWD") or None,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _STARTED.append(self.proc)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, wanted: Callable[[str], bool], timeout: float = 240) -> None:
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError("the run ended before the point the test waits for:\n" + "".join(self.seen))
            self.seen.append(line)
            if wanted(line):
                return

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 240) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.seen.append(line)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.seen)


def stuck(point: str) -> Callable[[str], bool]:
    return lambda line: line.strip() == f"lakebox-test: stuck at {point}"


def stage_started(stage: str) -> Callable[[str], bool]:
    def wanted(line: str) -> bool:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return False
        return isinstance(record, dict) and record.get("msg") == "stage started" and record.get("stage") == stage

    return wanted


def q(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    url = env.get("LAKEBOX_WAREHOUSE", "")
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as con:
            return con.execute(sql).fetchall()
    with duckdb.connect(str(Path(env["LAKEBOX_HOME"]) / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def marts(env: dict[str, str], pipeline: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each mart's rows, but for the bookkeeping columns (`_last_ingested_at`: when, not what)."""
    found = {}
    for mart in get_spec(pipeline).marts:
        schema, table = mart.split(".")
        columns = [c for (c,) in q(env, "select column_name from information_schema.columns where table_schema = "
                                        f"'{schema}' and table_name = '{table}' order by ordinal_position")
                   if not c.startswith("_")]
        rows = q(env, f"select {', '.join(columns)} from {mart}")
        found[mart] = sorted((tuple(_settled(v) for v in row) for row in rows), key=repr)
    return found


def _settled(value: Any) -> Any:
    """A float to 9 significant digits: a parallel sum's last bits depend on thread order."""
    return float(f"{value:.9g}") if isinstance(value, float) else value


def raw_tables(env: dict[str, str], pipeline: str) -> list[str]:
    """The pipeline's batch-tagged raw tables (not, e.g., github_commits' marks of unreachable commits)."""
    prefix = {ORDERS: "orders", RETAIL: "retail_"}.get(pipeline, pipeline)
    return [f"raw.{name}" for (name,) in q(env, "select table_name from information_schema.columns where "
                                                f"table_schema = 'raw' and table_name like '{prefix}%' "
                                                "and column_name = 'batch_id'")]


def assert_consistent(env: dict[str, str], pipeline: str) -> None:
    """No raw row without its batch marked loaded in the ledger: nothing half loaded."""
    for table in raw_tables(env, pipeline):
        orphans = q(env, f"select count(*) from {table} r left join ops.batches b on r.batch_id = b.batch_id "
                         "where b.status is null or b.status <> 'loaded'")
        assert orphans == [(0,)], f"{table} holds rows of batches the ledger does not call loaded"


# ------------------------------------------------------------------ inputs and references
@pytest.fixture(scope="module")
def orders_api() -> Iterator[str]:
    with serve_in_thread(create_app(orders=3000, seed=17)) as server:
        yield server.url


@pytest.fixture(scope="module")
def retail_drops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two stores' drops for a month, made once and copied into each test's landing folder."""
    out = tmp_path_factory.mktemp("drops") / "retail"
    gen = run_cli("retail-generate", "--stores", "2", "--months", "1", "--seed", "5", "--start", "2026-03-01",
                  "--out", str(out), env={**_clean_env(tmp_path_factory.mktemp("gen"))})
    assert gen.returncode == 0, gen.stderr
    return out


def _clean_env(home_parent: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAKEBOX_", "MLFLOW_", "AWS_")) or k == "LAKEBOX_CACHE_DIR"}
    env.update(LAKEBOX_HOME=str(home_parent / "home"), LAKEBOX_HTTP_BACKOFF="0.01", LAKEBOX_HTTP_MAX_DELAY="0.2",
               PWD=str(home_parent))
    return env


def _fed(env: dict[str, str], pipeline: str, orders_api: str, retail_drops: Path) -> dict[str, str]:
    if pipeline == ORDERS:
        return {**env, "LAKEBOX_ORDERS_API_URL": orders_api, "LAKEBOX_ORDERS_PAGE_SIZE": "500"}
    shutil.copytree(retail_drops, Path(env["LAKEBOX_HOME"]) / "landing" / "retail")
    return env


_REFERENCES: dict[tuple[str, str], dict[str, list[tuple[Any, ...]]]] = {}


def reference(pipeline: str, kind: str, make_env: Callable[[str, str], dict[str, str]]) -> dict[str, list[Any]]:
    """The marts of one uninterrupted run of the same input on the same kind of warehouse."""
    if (pipeline, kind) not in _REFERENCES:
        env = make_env(pipeline, kind)
        done = run_cli("run", pipeline, env=env)
        assert done.returncode == 0, done.stderr
        _REFERENCES[pipeline, kind] = marts(env, pipeline)
    return _REFERENCES[pipeline, kind]


@pytest.fixture
def make_env(tmp_path_factory: pytest.TempPathFactory, orders_api: str, retail_drops: Path,
             request: pytest.FixtureRequest) -> Iterator[Callable[[str, str], dict[str, str]]]:
    """A fresh home, fed with the pipeline's input, on a fresh warehouse of the kind asked."""
    databases: list[Any] = []

    def make(pipeline: str, kind: str) -> dict[str, str]:
        env = _fed(_clean_env(tmp_path_factory.mktemp(pipeline)), pipeline, orders_api, retail_drops)
        if kind == "postgres":
            admin = request.getfixturevalue("postgres_admin_dsn")
            database = fresh_database(admin)
            databases.append(database)
            env["LAKEBOX_WAREHOUSE"] = database.__enter__()
        return env

    yield make
    for database in databases:
        database.__exit__(None, None, None)


# ------------------------------------------------------------------ the cases

STAGES = [  # (pipeline, stage, how the test finds the child in that stage)
    (ORDERS, "fetch", "land"),
    (ORDERS, "load", "load"),
    (ORDERS, "transform", "stage"),
    (ORDERS, "snapshot", "snapshot"),
    (RETAIL, "land", "land"),
    (RETAIL, "load", "load"),
    (RETAIL, "transform", "stage"),
    (RETAIL, "snapshot", "snapshot"),
]
# On PostgreSQL, the stages whose warehouse work differs from DuckDB's (server-side statements
# cancelled, dbt's queries cancelled); fetch, land and snapshot do the same in either.
CASES = [("duckdb", *case) for case in STAGES] + [
    ("postgres", p, s, point) for p, s, point in STAGES if (p, s) in {(ORDERS, "load"), (ORDERS, "transform"),
                                                                     (RETAIL, "load")}]


def check_stop_in_stage(make_env: Callable[[str, str], dict[str, str]], warehouse_kind: str, pipeline: str,
                        stage: str, point: str) -> None:
    """SIGTERM in `stage`: exit 143, the run and stage recorded failed, nothing half loaded,
    the lock free, and a re-run builds the marts of a run never interrupted."""
    env = make_env(pipeline, warehouse_kind)
    expected = reference(pipeline, warehouse_kind, make_env)
    child = Child("none" if point == "stage" else point, pipeline, env)
    child.wait_for(stage_started(stage) if point == "stage" else stuck(point))
    code = child.stop()

    assert code == 143, child.stderr
    assert f"{pipeline}: {INTERRUPTED} during stage {stage}" in child.stderr
    ((run_id, status, error, ended),) = q(env, "select run_id, status, error, ended_at is not null "
                                               "from ops.pipeline_runs")
    assert (status, error, ended) == ("failed", INTERRUPTED, True)
    stages = [s.name for s in get_spec(pipeline).pipeline().stages]
    before = stages[:stages.index(stage)]
    recorded = q(env, f"select stage, status, error, ended_at is not null from ops.stage_runs "
                      f"where run_id = '{run_id}' order by started_at")
    assert recorded == [(s, "success", None, True) for s in before] + [(stage, "failed", INTERRUPTED, True)]
    assert_consistent(env, pipeline)
    if stage in ("fetch", "land", "load"):
        assert q(env, "select count(*) from ops.batches where status = 'loaded'") == [(0,)], \
            "the interrupted load committed nothing"
    with exclusive(Path(env["LAKEBOX_HOME"]), f"run-{pipeline}", f"pipeline {pipeline}"):
        pass  # free again

    again = run_cli("run", pipeline, env=env)
    assert again.returncode == 0, again.stderr
    assert marts(env, pipeline) == expected
    assert_consistent(env, pipeline)
    assert [s for (s,) in q(env, "select status from ops.pipeline_runs order by started_at")] == ["failed", "success"]
