"""/metrics answers within 50 ms with 50 pipelines' worth of series (the issue's target)."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import httpx

from lakebox.observability import note_http_retry, watching
from lakebox.observability.metrics import RUN_SECONDS, STAGE_SECONDS
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse

PIPELINES = 50


def fifty_pipelines(settings: Settings) -> None:
    """A year of hourly-ish history: 50 pipelines × 200 runs, 10 checks per source, stages."""
    with open_warehouse(settings) as wh:
        wh.execute(
            "insert into ops.pipeline_runs select 'p' || (i % 50) || '-' || i, 'p' || (i % 50), "
            "case when i % 10 = 0 then 'failed' when i % 7 = 0 then 'partial' else 'success' end, "
            "?::timestamp + to_seconds(i * 60), ?::timestamp + to_seconds(i * 60 + 30), 30.0, 1000, 900, null "
            "from range(10000) t(i)", [dt.datetime(2026, 1, 1)] * 2)
        wh.execute(
            "insert into ops.dq_results select null, 'b' || i, 'p' || (i % 50), 'check_' || (i % 10), 'c', "
            "i % 13 <> 0, 0, null, now() from range(50000) t(i)")
    for p in range(PIPELINES):
        RUN_SECONDS.labels(f"p{p}", "success").observe(30)
        for stage in ("ingest", "load", "gate", "transform", "snapshot"):
            STAGE_SECONDS.labels(f"p{p}", stage, "success").observe(5)
        note_http_retry(f"p{p}", 1.0, rate_limited=True)


def test_metrics_answers_within_50_ms_with_50_pipelines(settings: Settings) -> None:
    fifty_pipelines(settings)
    with watching(settings, 0) as observer, httpx.Client() as client:
        assert observer.url
        first = client.get(observer.url).text
        assert first.count('lakebox_pipeline_runs_total{pipeline="p') == PIPELINES * 3
        times = []
        for _ in range(60):
            started = time.perf_counter()
            response = client.get(observer.url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        read = time.perf_counter()
        observer.live.refresh()
        read_ms = (time.perf_counter() - read) * 1000
    lines = sum(1 for line in first.splitlines() if not line.startswith("#"))
    p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
    print(f"\n/metrics with {PIPELINES} pipelines: {lines} series, {len(first)} bytes; "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms; ops read (background) {read_ms:.0f} ms")
    assert p50 <= 50, f"/metrics p50 {p50:.1f} ms"
