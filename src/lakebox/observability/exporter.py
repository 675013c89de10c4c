"""Serve /metrics (lakebox watch) and push a one-shot run's metrics to a Pushgateway.

The ops tables are read on a background thread every LAKEBOX_METRICS_REFRESH seconds
(and right after each run), never inside a scrape, so a scrape never holds the DuckDB
file. The text of every series is rendered once per change (prometheus_client renders
about 40 µs a series here: 50 pipelines' worth is ~250 ms) and kept; a scrape adds only
the few series that move with the clock (freshness), so it answers in milliseconds.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lakebox import core_settings as core
from lakebox.log import get_logger
from lakebox.observability.snapshot import OpsSnapshot, read_settings_snapshot
from lakebox.settings import redact

if TYPE_CHECKING:
    from lakebox.observability.alerts import Alerting
    from lakebox.runner import RunOutcome
    from lakebox.settings import Settings

PUSHGATEWAY_ENV = "LAKEBOX_PUSHGATEWAY_URL"
PUSH_JOB = "lakebox"


class LiveSnapshot:
    """The latest snapshot and when it was read; a failed read keeps the previous one."""

    def __init__(self, read: Callable[[], OpsSnapshot]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self.snapshot = OpsSnapshot(taken_at=0.0)
        self.errors = 0
        self.reads = 0

    def get(self) -> OpsSnapshot:
        return self.snapshot

    def health(self) -> tuple[float, int]:
        return self.snapshot.taken_at, self.errors

    def refresh(self) -> OpsSnapshot:
        with self._lock:
            self.reads += 1
            try:
                self.snapshot = self._read()
            except Exception as exc:  # noqa: BLE001 - a locked or unreachable warehouse: serve the last snapshot
                self.errors += 1
                get_logger().debug("ops tables not readable for metrics", error=redact(str(exc)))
            return self.snapshot


class Exposition:
    """The /metrics body: cached text of the series that change with the data, plus the
    clock-driven ones rendered per scrape."""

    def __init__(self, live: LiveSnapshot, settings: Settings) -> None:
        from prometheus_client import CollectorRegistry

        from lakebox.observability.metrics import ClockCollector, registry_for

        self._live = live
        self._data = registry_for(live.get, settings.env, clock=False)
        self._clock = CollectorRegistry(auto_describe=False)
        self._clock.register(ClockCollector(live.get, live.health))
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._text = b""

    def render(self) -> bytes:
        """Render the data series again if they changed since the last time."""
        from prometheus_client import generate_latest

        from lakebox.observability.metrics import version

        with self._lock:
            key = (id(self._live.snapshot), version())
            if key != self._key:
                self._text, self._key = generate_latest(self._data), key
            return self._text

    def body(self) -> bytes:
        from prometheus_client import generate_latest

        return self.render() + generate_latest(self._clock)


def serve_metrics(exposition: Exposition, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """GET /metrics on (host, port) from a daemon thread; port 0 picks a free one."""
    from prometheus_client import CONTENT_TYPE_LATEST

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "lakebox serves /metrics")
                return
            body = exposition.body()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            get_logger().debug("metrics request failed (the scraper gave up?)", client=str(client_address))

    server = Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="lakebox-metrics", daemon=True).start()
    return server


class Observer:
    """What `lakebox watch` runs beside its loop: /metrics (when a port is given), the
    periodic read of the ops tables, and the freshness, drift and promotion checks."""

    def __init__(self, settings: Settings, port: int | None, alerting: Alerting | None,
                 on_run: Callable[[Settings, RunOutcome], None]) -> None:
        self.settings, self.alerting, self._on_run = settings, alerting, on_run
        self.every = core.METRICS_REFRESH.read(settings.env)
        self.live = LiveSnapshot(lambda: read_settings_snapshot(settings))
        self.exposition = Exposition(self.live, settings) if port is not None else None
        self.server: http.server.ThreadingHTTPServer | None = None
        self.url: str | None = None
        self._stop = threading.Event()
        self._active = port is not None or alerting is not None  # else: nothing to read the tables for
        if self._active:
            self.check()
        if self.exposition is not None and port is not None:
            host = core.METRICS_HOST.read(settings.env)
            self.server = serve_metrics(self.exposition, host, port)
            self.url = f"http://{host}:{self.server.server_address[1]}/metrics"
            get_logger().info("metrics served", url=self.url)
        self._thread = threading.Thread(target=self._loop, name="lakebox-observer", daemon=True)
        if self._active:
            self._thread.start()

    def check(self) -> None:
        """Read the ops tables, render the series for the next scrapes, check for alerts."""
        snap = self.live.refresh()
        if self.exposition is not None:
            self.exposition.render()
        if self.alerting is not None and snap.taken_at:
            self.alerting.check(snap)

    def on_run(self, outcome: RunOutcome) -> None:
        self._on_run(self.settings, outcome)
        if self._active:
            self.check()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.check()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.alerting is not None:
            self.alerting.flush(core.ALERT_FLUSH.read(self.settings.env))


def push_runs(settings: Settings, snap: OpsSnapshot, pipelines: Sequence[str]) -> list[str]:
    """Push each pipeline's series to the Pushgateway as group {job="lakebox", pipeline=...}
    (no instance label: a run from another host replaces, not duplicates). Returns the
    pipelines pushed; a gateway that is down is a warning, never a failed run."""
    from prometheus_client import push_to_gateway

    from lakebox.observability.metrics import registry_for

    url = settings.env.get(PUSHGATEWAY_ENV)
    if not url:
        return []
    pushed = []
    for pipeline in dict.fromkeys(pipelines):
        started = time.perf_counter()
        try:
            registry = registry_for(functools.partial(snap.only, pipeline), settings.env, pipeline=pipeline)
            push_to_gateway(url, job=PUSH_JOB, registry=registry, grouping_key={"pipeline": pipeline}, timeout=5)
        except Exception as exc:  # noqa: BLE001 - the run already finished; metrics are best effort
            get_logger().warning("metrics not pushed to the Pushgateway", pipeline=pipeline,
                                 pushgateway=redact(url), error=redact(f"{type(exc).__name__}: {exc}"))
            continue
        pushed.append(pipeline)
        get_logger().debug("metrics pushed", pipeline=pipeline, seconds=round(time.perf_counter() - started, 3))
    return pushed
