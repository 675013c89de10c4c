"""Bench: what observability costs (issue 12).

- The HTTP orders run plain, and again with LAKEBOX_PUSHGATEWAY_URL (Debian's real
  Pushgateway when installed, else a loopback stand-in) and LAKEBOX_LOKI_URL (a loopback
  stand-in that accepts pushes) set; each twice, alternating (plain, observed, observed,
  plain), the minimum of each, as a loaded machine's noise only ever adds. Timed as `lakebox
  run` pays it: the run, the end-of-run push, and the wait for the last log lines at exit;
  both at the default log level. CPU seconds (the process's, every thread) are reported
  beside the wall time: on a shared machine they say more.
- /metrics with 50 pipelines' worth of series (as tests/observability/test_bench.py builds
  them): the latency of 60 scrapes.

The scenarios run in their own processes: `python -m lakebox.bench.observability NAME JSON`.
"""

from __future__ import annotations

import http.server
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from lakebox.ports import free_port

PIPELINES = 50
SCRAPES = 60
RUNS_EACH = 2
OVERHEAD_TARGET = 0.03
METRICS_TARGET_MS = 50.0


def own_worker(module: str, scenario: str, env: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    """`lakebox.bench._worker` for a scenario of `module` (each bench module runs its own)."""
    proc = subprocess.run([sys.executable, "-m", module, scenario, orjson.dumps(kwargs).decode()],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench scenario {scenario} failed:\n{proc.stderr[-3000:]}")
    # the last JSON line: a child of the scenario (e.g. Dagster's code server) may print after it
    last = next((line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")), None)
    if last is None:
        raise RuntimeError(f"bench scenario {scenario} printed no result:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    result: dict[str, Any] = orjson.loads(last)
    if result.get("status", "success") != "success":
        raise RuntimeError(f"bench scenario {scenario} ended {result['status']}: {result.get('error')}")
    return result


# --- in the bench's process: the receivers ------------------------------------------------


class Receiver:
    """A loopback HTTP server that accepts every POST/PUT (Loki's push; a Pushgateway's
    stand-in) and counts requests and Loki lines."""

    def __init__(self) -> None:
        self.requests = 0
        self.lines = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _accept(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                lines = 0
                if self.path.endswith("/loki/api/v1/push"):
                    lines = sum(len(s["values"]) for s in orjson.loads(body)["streams"])
                with receiver._lock:
                    receiver.requests += 1
                    receiver.lines += lines
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _accept

            def do_DELETE(self) -> None:
                self._accept()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def pushgateway(folder: Path) -> Iterator[tuple[str, str]]:
    """(url, what it is): Debian's prometheus-pushgateway on a free loopback port, else a stand-in."""
    import httpx

    exe = shutil.which("prometheus-pushgateway")
    if exe is None:
        stub = Receiver()
        try:
            yield stub.url, "a loopback stand-in (prometheus-pushgateway is not installed)"
        finally:
            stub.close()
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "pushgateway.log").open("wb") as out:
        proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus-pushgateway did not start; see {folder / 'pushgateway.log'}")
            time.sleep(0.1)
        yield url, "Debian's prometheus-pushgateway"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_observability(http_size: int, root: Path, metrics: bool = True) -> dict[str, Any]:
    """The HTTP run plain and observed (alternating, min of each), and /metrics' latency."""
    from lakebox.bench import _env, _say, human

    result: dict[str, Any] = {}
    if http_size:
        loki = Receiver()
        try:
            with pushgateway(root / "pushgateway") as (push_url, push_kind):
                plain: list[dict[str, Any]] = []
                observed: list[dict[str, Any]] = []
                for i in range(RUNS_EACH):  # plain, observed, observed, plain: a drift in load evens out
                    for kind in ("plain", "observed")[:: 1 if i % 2 == 0 else -1]:
                        _say(f"orders over HTTP {human(http_size)}, {kind} ({i + 1}/{RUNS_EACH}) …")
                        if kind == "plain":
                            plain.append(own_worker(__name__, "run", _env(root / f"obs-plain-{i}"), api_orders=http_size))
                            continue
                        lines = loki.lines
                        env = _env(root / f"obs-observed-{i}", LAKEBOX_PUSHGATEWAY_URL=push_url,
                                   LAKEBOX_LOKI_URL=loki.url)
                        observed.append({**own_worker(__name__, "run", env, api_orders=http_size),
                                         "loki_lines": loki.lines - lines})
        finally:
            loki.close()
        best_plain = min(r["seconds"] for r in plain)
        best_observed = min(r["seconds"] for r in observed)
        cpu_plain = min(r["cpu_seconds"] for r in plain)
        result["http"] = {"size": http_size, "pushgateway": push_kind, "plain": plain, "observed": observed,
                          "plain_seconds": best_plain, "observed_seconds": best_observed,
                          "overhead": best_observed / best_plain - 1,
                          "cpu_overhead": min(r["cpu_seconds"] for r in observed) / cpu_plain - 1}
    if metrics:
        _say(f"/metrics with {PIPELINES} pipelines' worth of series …")
        result["metrics"] = own_worker(__name__, "metrics", _env(root / "obs-metrics"), pipelines=PIPELINES)
    return result


def targets(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if "skipped" in result:
        return [("metrics and log shipping ≤ 3% of the HTTP run; /metrics ≤ 50 ms", f"skipped: {result['skipped']}", "–")]
    if "http" in result:
        from lakebox.bench import human

        h = result["http"]
        rows.append((f"metrics (Pushgateway) and log shipping (Loki) add ≤ 3% to the {human(h['size'])}-order HTTP run",
                     f"{100 * h['overhead']:+.1f}% ({h['plain_seconds']:.2f} → {h['observed_seconds']:.2f} s; "
                     f"CPU {100 * h.get('cpu_overhead', 0):+.1f}%)",
                     "yes" if h["overhead"] <= OVERHEAD_TARGET else "no"))
    if "metrics" in result:
        m = result["metrics"]
        rows.append((f"`/metrics` answers ≤ 50 ms with {m['pipelines']} pipelines' worth of series ({m['series']:,} series)",
                     f"p95 {m['p95_ms']:.1f} ms (p50 {m['p50_ms']:.1f})", "yes" if m["p95_ms"] <= METRICS_TARGET_MS else "no"))
    return rows


def section(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "http" in result:
        from lakebox.bench import human

        h = result["http"]
        lines += [f"## Observability: the {human(h['size'])}-order HTTP run plain and observed", "",
                  "Each run in a new home at the default log level (INFO), timed as `lakebox run` pays it: the run, "
                  "the push to the Pushgateway and the wait for the last log lines to reach Loki. Observed: "
                  f"LAKEBOX_PUSHGATEWAY_URL ({h['pushgateway']}) and LAKEBOX_LOKI_URL (a loopback stand-in that "
                  "accepts pushes). Alternating (plain, observed, observed, plain), "
                  f"{len(h['plain'])} of each; the minimum counts.", "",
                  "| run | plain s | observed s | plain CPU s | observed CPU s | observed: end of run s "
                  "| lines shipped | lines not shipped |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for i, (p, o) in enumerate(zip(h["plain"], h["observed"], strict=True)):
            lines.append(f"| {i + 1} | {p['seconds']:.2f} | {o['seconds']:.2f} | {p.get('cpu_seconds', 0):.2f} | "
                         f"{o.get('cpu_seconds', 0):.2f} | {o['seconds'] - o['run_seconds']:.2f} | {o['loki_lines']:,} | "
                         f"{o['unshipped']:,} |")
        lines.append("")
    if "metrics" in result:
        m = result["metrics"]
        lines += [f"## Observability: /metrics with {m['pipelines']} pipelines' worth of series", "",
                  f"{m['series']:,} series ({m['bytes']:,} bytes) from {m['runs']:,} runs and {m['checks']:,} check "
                  f"results in ops.*, plus in-process stage and retry series; {m['scrapes']} scrapes: "
                  f"p50 {m['p50_ms']:.1f} ms, p95 {m['p95_ms']:.1f} ms, max {m['max_ms']:.1f} ms. The ops read "
                  f"behind it runs in the background ({m['refresh_ms']:.0f} ms), not per scrape.", ""]
    return lines


# --- in a scenario's own process ----------------------------------------------------------


def run(api_orders: int) -> dict[str, Any]:
    """The orders pipeline with its HTTP fetch, as `lakebox run orders` does it (log shipping
    configured, the end-of-run push, the exit's wait for the last log lines)."""
    import os

    from lakebox.lake import Lake
    from lakebox.log import configure_logging
    from lakebox.observability import after_runs, configure, stop_log_shipping
    from lakebox.pipelines import get_pipeline
    from lakebox.runner import run_pipeline
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    os.environ["LAKEBOX_DEMO_ORDERS"] = str(api_orders)
    settings = Settings.load()
    configure_logging(settings.logs_dir, settings.log_level)
    configure(settings)
    lake = Lake.from_settings(settings)
    with open_warehouse(settings) as wh:
        t0, cpu0 = time.perf_counter(), time.process_time()
        outcome = run_pipeline(get_pipeline("orders"), settings, lake, wh)
        run_seconds = time.perf_counter() - t0
        after_runs(settings, [outcome], wh)
    unshipped = stop_log_shipping(timeout=float(settings.env.get("LAKEBOX_LOKI_FLUSH", "2")))
    return {"status": outcome.status, "error": outcome.error, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0, "run_seconds": run_seconds, "unshipped": unshipped}


def fifty_pipelines(settings: Any, pipelines: int = PIPELINES) -> tuple[int, int]:
    """A year of history for `pipelines` pipelines: 200 runs each, 10 checks per pipeline,
    and in-process stage and retry series (tests/observability/test_bench.py uses it too)."""
    import datetime as dt

    from lakebox.observability import note_http_retry
    from lakebox.observability.metrics import RUN_SECONDS, STAGE_SECONDS
    from lakebox.warehouse import open_warehouse

    runs, checks = pipelines * 200, pipelines * 1000
    with open_warehouse(settings) as wh:
        wh.execute(
            f"insert into ops.pipeline_runs select 'p' || (i % {pipelines}) || '-' || i, 'p' || (i % {pipelines}), "
            "case when i % 10 = 0 then 'failed' when i % 7 = 0 then 'partial' else 'success' end, "
            "?::timestamp + to_seconds(i * 60), ?::timestamp + to_seconds(i * 60 + 30), 30.0, 1000, 900, null "
            f"from range({runs}) t(i)", [dt.datetime(2026, 1, 1)] * 2)
        wh.execute(
            f"insert into ops.dq_results select null, 'b' || i, 'p' || (i % {pipelines}), 'check_' || (i % 10), 'c', "
            f"i % 13 <> 0, 0, null, now() from range({checks}) t(i)")
    for p in range(pipelines):
        RUN_SECONDS.labels(f"p{p}", "success").observe(30)
        for stage in ("ingest", "load", "gate", "transform", "snapshot"):
            STAGE_SECONDS.labels(f"p{p}", stage, "success").observe(5)
        note_http_retry(f"p{p}", 1.0, rate_limited=True)
    return runs, checks


def metrics(pipelines: int = PIPELINES, scrapes: int = SCRAPES) -> dict[str, Any]:
    """/metrics' latency over `scrapes` requests once the series are there."""
    import httpx

    from lakebox.log import configure_logging
    from lakebox.observability import watching
    from lakebox.settings import Settings

    settings = Settings.load()
    configure_logging(settings.logs_dir, "WARNING")
    runs, checks = fifty_pipelines(settings, pipelines)
    with watching(settings, 0) as observer, httpx.Client() as client:
        assert observer.url
        first = client.get(observer.url).text
        if first.count('lakebox_pipeline_runs_total{pipeline="p') < pipelines:
            return {"status": "failed", "error": f"/metrics lacks the {pipelines} pipelines' series"}
        times = []
        for _ in range(scrapes):
            started = time.perf_counter()
            response = client.get(observer.url)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        refresh = time.perf_counter()
        observer.live.refresh()
        refresh_ms = (time.perf_counter() - refresh) * 1000
    return {"pipelines": pipelines, "runs": runs, "checks": checks, "scrapes": scrapes,
            "series": sum(1 for line in first.splitlines() if line and not line.startswith("#")),
            "bytes": len(first), "p50_ms": statistics.median(times), "p95_ms": statistics.quantiles(times, n=20)[-1],
            "max_ms": max(times), "refresh_ms": refresh_ms}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {"run": run, "metrics": metrics}

if __name__ == "__main__":
    outcome = SCENARIOS[sys.argv[1]](**orjson.loads(sys.argv[2] if len(sys.argv) > 2 else "{}"))
    sys.stdout.write(orjson.dumps(outcome).decode() + "\n")
