"""Shared fixtures: an isolated LAKEBOX_HOME, the real CLI, a fresh PostgreSQL database,
and a real S3 endpoint (moto's server) on loopback."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN_DSN = os.environ.get("LAKEBOX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# MLflow's set_tracking_uri also sets MLFLOW_TRACKING_URI in os.environ, so an earlier test
# in the same worker would otherwise point a later one at its own store.
_LAKEBOX_VARS = ("LAKEBOX_HOME", "LAKEBOX_WAREHOUSE", "LAKEBOX_LAKE", "LAKEBOX_LANDING", "LAKEBOX_ORDERS_API_URL",
                 "LAKEBOX_CONFIG", "LAKEBOX_PROJECT", "AWS_ENDPOINT_URL", "MLFLOW_TRACKING_URI")


# The files that take longest, longest first, run before the rest: `make test` (xdist's
# --dist loadfile --no-loadscope-reorder) hands files to its two workers in collection order,
# so the long ones start at once, one per worker, and the short ones fill in around them.
# Measured with --junitxml (set-up included) on a busy 2-core machine, 2026-12; keep it to
# the few that dominate.
SLOWEST_FIRST = (
    "tests/warehouse/test_spark_pipelines.py",
    "tests/pipelines/orders/test_orders_e2e.py",
    "tests/interrupts/test_sigterm_ml.py",
    "tests/interrupts/test_sigterm.py",
    "tests/interrupts/test_sigterm_retail.py",
    "tests/quality/test_quarantine_matrix.py",
    "tests/orchestration/test_serve.py",
    "tests/pipelines/who_gho/test_e2e.py",
    "tests/orchestration/test_celery.py",
    "tests/orchestration/test_definitions.py",
    "tests/declarative/test_page_browser.py",
    "tests/declarative/test_models.py",
    "tests/declarative/test_tutorial.py",
    "tests/declarative/test_project_e2e.py",
    "tests/ml/test_serving_raw.py",
    "tests/ml/test_page.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session", autouse=True)
def machine_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One LAKEBOX_CACHE_DIR for the whole test session (shared by xdist workers), in the
    environment every test and subprocess inherits: homes start with dbt's parse warm, as on
    a user's machine, and the user's own cache is untouched."""
    cache = tmp_path_factory.getbasetemp().parent / "lakebox-cache"
    before = os.environ.get("LAKEBOX_CACHE_DIR")
    os.environ["LAKEBOX_CACHE_DIR"] = str(cache)
    yield cache
    if before is None:
        os.environ.pop("LAKEBOX_CACHE_DIR", None)
    else:
        os.environ["LAKEBOX_CACHE_DIR"] = before


@pytest.fixture
def lakebox_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An isolated home for one test, set in os.environ and returned for subprocesses."""
    for name in _LAKEBOX_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("LAKEBOX_HOME", str(home))
    monkeypatch.setenv("LAKEBOX_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("LAKEBOX_HTTP_MAX_DELAY", "0.2")
    monkeypatch.chdir(tmp_path)
    return dict(os.environ)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler for tests' scripted HTTP servers: sends JSON, logs nothing."""

    def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve_on_loopback(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 with `handler`, for the duration of the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real `lakebox` command, in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "lakebox.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=env.get("PWD") or None,
    )


def service_missing(reason: str, variable: str) -> None:
    """A test's service is missing: fail when `variable`=1 requires it (CI), else skip, with the reason."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {reason}")
    pytest.skip(reason)


def _postgres_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        return f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}"


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> str:
    reason = _postgres_reason()
    if reason:
        service_missing(reason, "LAKEBOX_REQUIRE_POSTGRES")
    return PG_ADMIN_DSN


@contextmanager
def fresh_database(admin_dsn: str, prefix: str = "lakebox_t") -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards; usable from fixtures of any scope."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as con:
        con.execute(f'create database "{name}"')
    try:
        yield admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def pg_url(postgres_admin_dsn: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards. Yields its URL."""
    with fresh_database(postgres_admin_dsn) as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback: a real HTTP S3 endpoint for the test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto endpoint, with AWS variables pointing at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"lakebox-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing-secret").create_bucket(Bucket=name)
    return name
