"""What the exporter reads from the ops and ml tables: tolerant of tables that are
missing or shaped a little differently, and the HTTP layer's retry counters."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import generate_latest

from lakebox.observability import note_http_retry
from lakebox.observability.metrics import registry_for
from lakebox.observability.sla import freshness_sla, parse_duration
from lakebox.observability.snapshot import OpsSnapshot, read_settings_snapshot, read_snapshot
from lakebox.settings import Settings, redact
from lakebox.warehouse import open_warehouse
from tests.observability.conftest import run_script, with_env


def test_a_new_home_without_a_warehouse_reads_as_empty(settings: Settings) -> None:
    snap = read_settings_snapshot(settings)
    assert snap == OpsSnapshot(taken_at=snap.taken_at)
    assert not settings.home.joinpath("warehouse.duckdb").exists(), "reading metrics creates nothing"


def test_open_quarantine_items_are_counted_by_source(settings: Settings) -> None:
    from lakebox.warehouse.ops import quarantine

    with open_warehouse(settings) as wh:
        opened = [quarantine.open_item(wh, source=source, pipeline=source, batch_id=f"b{i}", item=f"i{i}",
                                       lake_path="k", quarantine_path="q", rules="[]", run_id="r")
                  for i, source in enumerate(["orders", "orders", "retail", "orders"])]
        quarantine.dismiss(wh, opened[1].id, reason="known bad export", by="test")
        snap = read_snapshot(wh)
    assert snap.quarantine_open == {"orders": 2, "retail": 1}


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_runs_checks_models_and_drift_become_series(settings: Settings, engine: str,
                                                     request: pytest.FixtureRequest) -> None:
    if engine == "postgres":
        settings = with_env(settings, LAKEBOX_WAREHOUSE=request.getfixturevalue("pg_url"))
    run_script(settings, [("alpha", False), ("alpha", True)])
    with open_warehouse(settings) as wh:
        wh.execute("insert into ops.dq_results values ('r', 'b1', 'orders', 'not_null', 'id', false, 3, null, ?),"
                   " ('r', 'b1', 'orders', 'unique', 'id', true, 0, null, ?)", [dt.datetime(2026, 1, 1)] * 2)
        from lakebox.ml import tables

        tables.ensure(wh, tables.MODEL_DECISIONS)
        wh.execute("insert into ml.model_decisions values ('gho_le', '3', 'champion', 'mae', 1.5, null, 'first', ?, 'r'), "
                   "('gho_le', '4', 'challenger', 'mae', 9.0, 1.5, 'worse', ?, 'r')",
                   [dt.datetime(2026, 1, 1), dt.datetime(2026, 2, 1)])
        snap = read_snapshot(wh)
    assert snap.runs == {("alpha", "success"): 1, ("alpha", "failed"): 1}
    assert snap.last_status == {"alpha": "failed"} and set(snap.last_success) == {"alpha"}
    assert snap.model_metrics == {("gho_le", "mae"): 1.5}, "the champion's, not the latest"
    assert snap.promotions["gho_le"].version == "3"
    text = generate_latest(registry_for(lambda: snap, {"LAKEBOX_ALPHA_SLA": "2h"})).decode()
    assert 'lakebox_quality_checks_failed_total{check="not_null",source="orders"} 1.0' in text
    assert 'lakebox_quality_checks_failed_total{check="unique",source="orders"} 0.0' in text
    assert 'lakebox_model_metric{metric="mae",model="gho_le"} 1.5' in text
    assert 'lakebox_pipeline_freshness_sla_seconds{pipeline="alpha"} 7200.0' in text


def test_http_retries_and_rate_limit_waits_are_counted_per_source(settings: Settings) -> None:
    from lakebox.log import log_context

    with log_context(pipeline="github_commits"):
        note_http_retry("github", 0.5)
        note_http_retry("github", 12.0, rate_limited=True)
    text = generate_latest(registry_for(OpsSnapshot, {})).decode()
    assert 'lakebox_http_retries_total{pipeline="github_commits",source="github"} 2.0' in text
    assert 'lakebox_http_rate_limit_wait_seconds_total{pipeline="github_commits",source="github"} 12.0' in text


def test_durations_and_slas() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "30m", "2h", "30d", "1w", "0.5s")] == [
        90, 90, 1800, 7200, 2_592_000, 604_800, 0.5]
    with pytest.raises(Exception, match="LAKEBOX_ORDERS_SLA='soon' is not a duration"):
        freshness_sla({"LAKEBOX_ORDERS_SLA": "soon"}, "orders")
    assert freshness_sla({"LAKEBOX_FRESHNESS_SLA": "6h", "LAKEBOX_ORDERS_SLA": "30m"}, "orders") == 1800
    assert freshness_sla({"LAKEBOX_FRESHNESS_SLA": "6h"}, "retail") == 21600
    assert freshness_sla({}, "retail") == 86400


def test_the_webhook_url_is_redacted() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXsecret"
    assert redact(f"posting to {url} failed", env={"LAKEBOX_ALERT_WEBHOOK_URL": url}) == "posting to *** failed"
