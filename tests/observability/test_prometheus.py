"""The real Prometheus scrapes lakebox's /metrics and the Pushgateway a one-shot run pushed to."""

from __future__ import annotations

import time

import httpx
import pytest

from lakebox.lake import Lake
from lakebox.observability import after_runs, watching
from lakebox.runner import run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.observability.conftest import pipeline, run_script, target, wait_for, with_env


def by(prom, expr: str) -> dict[tuple[str, ...], float]:
    return {tuple(v for _, v in labels): value for labels, value in prom.query(expr).items()}


@pytest.mark.slow
def test_prometheus_scrapes_the_run_counts_and_freshness_a_sequence_of_runs_made(
        settings: Settings, prometheus) -> None:
    settings = with_env(settings, LAKEBOX_METRICS_REFRESH="0.1", LAKEBOX_SCRAPED_A_SLA="1h")
    with watching(settings, 0) as observer:
        assert observer.url and observer.url.startswith("http://127.0.0.1:"), "loopback by default"
        prom = prometheus([{"job_name": "lakebox", "static_configs": [{"targets": [target(observer.url)]}]}])
        script = [("scraped_a", False), ("scraped_a", True), ("scraped_b", True), ("scraped_a", False)]
        for outcome in run_script(settings, script):
            observer.on_run(outcome)
        a_ok = time.time()
        expected = {("scraped_a", "failed"): 1.0, ("scraped_a", "partial"): 0.0, ("scraped_a", "success"): 2.0,
                    ("scraped_b", "failed"): 1.0, ("scraped_b", "partial"): 0.0, ("scraped_b", "success"): 0.0}
        wait_for(lambda: by(prom, 'sum by (pipeline, status) (lakebox_pipeline_runs_total{job="lakebox"})') == expected,
                 what="run counts in Prometheus")
        # each check polls: a scrape that timed out on this busy machine leaves a gap
        wait_for(lambda: by(prom, 'sum by (pipeline) (lakebox_pipeline_last_run_status{status="failed"})') == {
            ("scraped_a",): 0.0, ("scraped_b",): 1.0}, what="latest status")
        fresh = wait_for(lambda: by(prom, "sum by (pipeline) (lakebox_pipeline_freshness_seconds)"), what="freshness")
        assert set(fresh) == {("scraped_a",)}, "scraped_b never succeeded: no freshness series"
        assert 0 <= fresh[("scraped_a",)] <= time.time() - a_ok + 5
        wait_for(lambda: by(prom, "sum by (pipeline) (lakebox_pipeline_freshness_sla_seconds)") == {
            ("scraped_a",): 3600.0, ("scraped_b",): 86400.0}, what="SLAs")
        durations = 'sum by (pipeline, status) (lakebox_run_duration_seconds_count{pipeline=~"scraped_.*"})'
        observed = {("scraped_a", "success"): 2.0, ("scraped_a", "failed"): 1.0, ("scraped_b", "failed"): 1.0}
        wait_for(lambda: by(prom, durations) == observed, what="run durations observed in-process")
        # a run made by another process (a cron `lakebox run`) shows up at the next read of the ops tables
        run_script(settings, [("scraped_b", False)])
        successes = 'sum by (pipeline) (lakebox_pipeline_runs_total{status="success"})'
        wait_for(lambda: by(prom, successes).get(("scraped_b",)) == 1.0, what="a run from outside the watcher")


@pytest.mark.slow
def test_a_one_shot_run_is_pushed_grouped_by_pipeline_without_instance(settings: Settings, pushgateway: str,
                                                                       prometheus) -> None:
    settings = with_env(settings, LAKEBOX_PUSHGATEWAY_URL=pushgateway)
    lake = Lake.from_settings(settings)
    with open_warehouse(settings) as wh:  # as `lakebox run` does: report while the warehouse is open
        outcomes = [run_pipeline(pipeline(name, fails), settings, lake, wh)
                    for name, fails in [("gamma", False), ("gamma", True), ("delta", False)]]
        after_runs(settings, outcomes, wh)
    groups = httpx.get(f"{pushgateway}/api/v1/metrics", timeout=5).json()["data"]
    labels = sorted(tuple(sorted(g["labels"].items())) for g in groups
                    if g["labels"].get("pipeline") in ("gamma", "delta"))
    assert labels == [(("job", "lakebox"), ("pipeline", "delta")), (("job", "lakebox"), ("pipeline", "gamma"))]
    gamma = next(g for g in groups if g["labels"].get("pipeline") == "gamma")
    runs = {m["labels"]["status"]: m["value"] for m in gamma["lakebox_pipeline_runs_total"]["metrics"]}
    assert runs == {"success": "1", "failed": "1", "partial": "0"}
    assert all(m["labels"]["pipeline"] == "gamma" for m in gamma["lakebox_pipeline_runs_total"]["metrics"]), \
        "a group holds only its own pipeline's series"

    prom = prometheus([{"job_name": "pushgateway", "honor_labels": True,
                        "static_configs": [{"targets": [target(pushgateway)]}]}])
    got = wait_for(lambda: prom.query('lakebox_pipeline_runs_total{pipeline="gamma"}'), what="pushed series")
    assert {dict(k)["status"]: v for k, v in got.items()} == {"success": 1.0, "failed": 1.0, "partial": 0.0}
    assert all(dict(k)["job"] == "lakebox" and "instance" not in dict(k) or dict(k).get("instance") == ""
               for k in got), got
    fresh = prom.query('lakebox_pipeline_freshness_seconds{pipeline="delta"}')
    assert fresh and all(v >= 0 for v in fresh.values())


def test_a_pushgateway_that_is_down_does_not_fail_the_run(settings: Settings) -> None:
    from tests.observability.conftest import free_port

    settings = with_env(settings, LAKEBOX_PUSHGATEWAY_URL=f"http://127.0.0.1:{free_port()}")
    outcomes = run_script(settings, [("epsilon", False)])
    started = time.monotonic()
    after_runs(settings, outcomes)
    assert time.monotonic() - started < 5
    lines = "".join(p.read_text() for p in settings.logs_dir.glob("*.jsonl"))
    assert "metrics not pushed to the Pushgateway" in lines
