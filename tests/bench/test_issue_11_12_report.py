"""The bench's rows and sections for issues 11 (`lakebox serve`, Dagster) and 12
(observability): rendered from recorded figures, met or not, skipped or failed."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from lakebox.bench.observability import Receiver
from lakebox.bench.report import render, targets

SERVE: dict[str, Any] = {
    "orders": 1000, "answered": {"dagster": 20.5, "mlflow": 31.0, "dashboard": 12.0}, "ready": 31.0,
    "definitions_loaded": 21.0, "one_shot": 9.0, "dagster_run": {"seconds": 16.5, "started_to_end": 12.0,
                                                                  "lakebox_seconds": 6.0, "rows": 1000},
    "stop": {"seconds": 2.0, "exit_code": 0, "processes": 9, "left": 0, "ports_still_bound": []},
    "daemon": {"ticks": 100, "first": 10, "at": [10, 50, 100], "rss_mb": [150.0, 156.0, 170.0], "runs": 100,
               "seconds": 90.0, "tick_seconds_median": 0.8},
}
OBSERVABILITY: dict[str, Any] = {
    "http": {"size": 100_000, "pushgateway": "Debian's prometheus-pushgateway",
             "plain": [{"seconds": 8.0, "run_seconds": 8.0, "cpu_seconds": 7.0},
                       {"seconds": 8.2, "run_seconds": 8.2, "cpu_seconds": 7.1}],
             "observed": [{"seconds": 8.3, "run_seconds": 8.1, "cpu_seconds": 7.2, "loki_lines": 18, "unshipped": 0},
                          {"seconds": 8.1, "run_seconds": 8.0, "cpu_seconds": 7.0, "loki_lines": 18, "unshipped": 0}],
             "plain_seconds": 8.0, "observed_seconds": 8.1, "overhead": 8.1 / 8.0 - 1, "cpu_overhead": 0.0},
    "metrics": {"pipelines": 50, "runs": 10_000, "checks": 50_000, "scrapes": 60, "series": 5643, "bytes": 523_456,
                "p50_ms": 2.1, "p95_ms": 60.0, "max_ms": 80.0, "refresh_ms": 40.0},
}


def _results(**extra: Any) -> dict[str, Any]:
    return {"machine": "test machine", "date": "2026-12-01 12:00 UTC", **extra}


def test_each_target_is_a_row_judged_against_its_bound() -> None:
    rows = {target: (measured, met) for target, measured, met in
            targets(_results(serve=SERVE, observability=OBSERVABILITY))}
    assert rows["`lakebox serve` answering on all three UIs ≤ 30 s from the command"] == (
        "31.0 s (definitions loaded 21.0 s)", "no")
    assert rows["… and SIGTERM leaves no process behind"] == ("0 left of 9, stopped in 2.0 s", "yes")
    assert rows["a 1k-order run launched through Dagster ≤ `lakebox run orders` + 8 s"] == (
        "16.5 s vs 9.0 s (+7.5 s)", "yes")
    assert rows["Dagster daemon RSS after 100 schedule ticks within 10% of after 10"] == (
        "150 → 170 MB (+13.3%)", "no")
    assert rows["metrics (Pushgateway) and log shipping (Loki) add ≤ 3% to the 100k-order HTTP run"] == (
        "+1.2% (8.00 → 8.10 s; CPU +0.0%)", "yes")
    assert rows["`/metrics` answers ≤ 50 ms with 50 pipelines' worth of series (5,643 series)"] == (
        "p95 60.0 ms (p50 2.1)", "no")


def test_the_report_has_the_rows_and_sections() -> None:
    markdown = render(_results(serve=SERVE, observability=OBSERVABILITY))
    assert "| Dagster daemon RSS after 100 schedule ticks within 10% of after 10 | 150 → 170 MB (+13.3%) | no |" in markdown
    assert "## `lakebox serve` and Dagster" in markdown and "RSS after ticks 10: 150 MB, 50: 156 MB, 100: 170 MB" in markdown
    assert "## Observability: the 100k-order HTTP run plain and observed" in markdown
    assert "| 2 | 8.20 | 8.10 | 7.10 | 7.00 | 0.10 | 18 | 0 |" in markdown


def test_a_skipped_or_failed_scenario_says_why() -> None:
    skipped = targets(_results(serve={"skipped": "dagster_webserver not installed (the serve extra)"}))
    assert skipped == [("`lakebox serve` and Dagster (issue 11)",
                        "skipped: dagster_webserver not installed (the serve extra)", "–")]
    failed = render(_results(serve={"failed": "lakebox serve exited 1:\nboom", "daemon": SERVE["daemon"]}))
    assert "| `lakebox serve` and Dagster (issue 11) | failed: see below | no |" in failed
    assert "lakebox serve exited 1:\nboom" in failed
    assert "within 10% of after 10" in failed  # what did run is still reported


def test_the_loki_stand_in_counts_the_lines_pushed() -> None:
    receiver = Receiver()
    try:
        body = {"streams": [{"stream": {"app": "lakebox"}, "values": [["1", "a"], ["2", "b"]]},
                            {"stream": {"app": "lakebox", "level": "WARNING"}, "values": [["3", "c"]]}]}
        assert httpx.post(f"{receiver.url}/loki/api/v1/push", content=orjson.dumps(body)).status_code == 204
        assert httpx.put(f"{receiver.url}/metrics/job/lakebox", content=b"x 1\n").status_code == 204
    finally:
        receiver.close()
    assert (receiver.requests, receiver.lines) == (2, 3)
