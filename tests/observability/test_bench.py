"""/metrics answers within 50 ms with 50 pipelines' worth of series (the issue's target)."""

from __future__ import annotations

import statistics
import time

import httpx

from lakebox.bench.observability import fifty_pipelines
from lakebox.observability import watching
from lakebox.settings import Settings

PIPELINES = 50


def test_metrics_answers_within_50_ms_with_50_pipelines(settings: Settings) -> None:
    fifty_pipelines(settings, PIPELINES)
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
