"""Real Prometheus and Pushgateway (Debian's packages) on free loopback ports, a scripted
sequence of runs in a temp warehouse, and a loopback receiver that records requests."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakebox.lake import Lake
from lakebox.log import configure_logging
from lakebox.ports import free_port
from lakebox.runner import Pipeline, RunOutcome, Stage, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.conftest import service_missing

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        service_missing(f"{name} is not installed (apt-get install prometheus prometheus-pushgateway)",
                        "LAKEBOX_REQUIRE_PROMETHEUS")
    return path


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@contextmanager
def server_process(args: list[str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is None and httpx.get(ready_url, timeout=1).status_code == 200,
                 what=f"{args[0]} ready ({log.read_text()[-500:] if log.exists() else ''})")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = binary("prometheus-pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    with server_process([exe, f"--web.listen-address=127.0.0.1:{port}"], f"{url}/-/ready", log):
        yield url


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant query: {sorted label pairs (without __name__): value}."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert body["status"] == "success", body
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(r["value"][1])
                for r in body["data"]["result"]}


@pytest.fixture
def prometheus(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Prometheus]:
    """Start a Prometheus scraping the given scrape configs every 500 ms (temp storage)."""
    exe = binary("prometheus")
    started: list[Any] = []

    def start(scrape_configs: list[dict[str, Any]]) -> Prometheus:
        import yaml

        folder = tmp_path / f"prometheus-{len(started)}"
        folder.mkdir()
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
            "scrape_configs": [{"scrape_interval": "500ms", "scrape_timeout": "450ms", **c} for c in scrape_configs],
        }))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cm = server_process([exe, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], f"{url}/-/ready", folder / "prometheus.log")
        cm.__enter__()
        started.append(cm)
        return Prometheus(url)

    yield start  # type: ignore[misc]
    for cm in started:
        cm.__exit__(None, None, None)


def target(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


@pytest.fixture(autouse=True)
def no_log_shipping_left() -> Iterator[None]:
    """A test that failed half-way must not leave its Loki handler on the lakebox logger."""
    yield
    from lakebox.observability import stop_log_shipping

    stop_log_shipping(timeout=0.5)


@pytest.fixture
def settings(lakebox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith(("LAKEBOX_ALERT", "LAKEBOX_PUSHGATEWAY", "LAKEBOX_LOKI",
                                                        "LAKEBOX_METRICS", "LAKEBOX_FRESHNESS"))]:
        monkeypatch.delenv(name)
    settings = Settings.load()
    configure_logging(settings.logs_dir, "WARNING")
    return settings


def with_env(settings: Settings, **values: str) -> Settings:
    env = {**settings.env, **values}
    return Settings.load(env=env, cwd=settings.home.parent)


def pipeline(name: str, fails: bool = False, rows: int = 10) -> Pipeline:
    def work(ctx: Any) -> Any:
        from lakebox.runner import StageResult

        if fails:
            raise RuntimeError(f"{name} source answered nonsense")
        return StageResult(rows_in=rows, rows_out=rows)

    return Pipeline(name, (Stage("ingest", work), Stage("transform", work)))


def run_script(settings: Settings, script: list[tuple[str, bool]]) -> list[RunOutcome]:
    """Run fake pipelines in order, (name, fails), recording them in ops.pipeline_runs."""
    lake = Lake.from_settings(settings)
    with open_warehouse(settings) as wh:
        return [run_pipeline(pipeline(name, fails), settings, lake, wh) for name, fails in script]


@dataclass
class Receiver:
    """A loopback HTTP receiver recording every POST; answers from `statuses` (then 204)."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0  # seconds to wait before answering (a slow server)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [body for _, _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    record = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with record.lock:
                record.requests.append((self.path, dict(self.headers), body))
                status = record.statuses.pop(0) if record.statuses else 204
            time.sleep(record.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.block_on_close = False  # a deliberately slow answer must not hold the test up
    server.handle_error = lambda *args: None  # type: ignore[method-assign]  # a client that gave up waiting
    threading.Thread(target=server.serve_forever, daemon=True).start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()
