"""Alert webhooks against a loopback receiver: each event, dedupe until the problem
clears, retries, and a receiver that is down never fails or stalls a run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import orjson
import pytest

from lakebox.observability import after_runs, flush_alerts, on_run_finished, watching
from lakebox.runner import RunOutcome
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.observability.conftest import Receiver, free_port, run_script, wait_for

SECRET_PATH = "/services/T000/B000/hushhushhush"


@pytest.fixture
def alerting(settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Alerts to the receiver; the URL set in the environment, as a user would."""
    monkeypatch.setenv("LAKEBOX_ALERT_WEBHOOK_URL", receiver.url + SECRET_PATH)
    monkeypatch.setenv("LAKEBOX_ALERT_BACKOFF", "0.01")
    monkeypatch.setenv("LAKEBOX_METRICS_REFRESH", "0.1")
    return Settings.load()


def report(settings: Settings, outcomes: list[RunOutcome]) -> None:
    """What `lakebox run` does at its end, then what its exit waits for."""
    after_runs(settings, outcomes)
    assert flush_alerts(10)


def alerts(receiver: Receiver) -> list[dict]:
    return [orjson.loads(b) for b in receiver.bodies()]


def kinds(receiver: Receiver) -> list[tuple[str, str]]:
    return [(a["kind"], a["key"]) for a in alerts(receiver)]


def test_a_failed_run_alerts_once_until_a_good_run_clears_it(alerting: Settings, receiver: Receiver) -> None:
    report(alerting, run_script(alerting, [("alpha", True)]))
    [sent] = alerts(receiver)
    assert sent["kind"] == "failed" and sent["pipeline"] == "alpha" and sent["status"] == "failed"
    assert sent["text"].startswith(
        ":red_circle: lakebox alpha run failed: RuntimeError: alpha source answered nonsense")
    assert sent["run_id"].startswith("alpha-") and "source answered nonsense" in sent["error"]
    assert {p for p, _, _ in receiver.requests} == {SECRET_PATH}
    report(alerting, run_script(alerting, [("alpha", True), ("alpha", True)]))
    assert len(alerts(receiver)) == 1, "the same open problem is not sent again"
    report(alerting, run_script(alerting, [("alpha", False), ("alpha", True)]))
    assert kinds(receiver) == [("failed", "alpha:failed"), ("failed", "alpha:failed")], "cleared, then failed anew"


def test_a_partial_run_alerts_and_dedupes_across_processes(alerting: Settings, receiver: Receiver) -> None:
    outcome = run_script(alerting, [("beta", False)])[0]
    partial = dataclasses.replace(outcome, run_id=outcome.run_id + "-p", status="partial")
    report(alerting, [partial])
    [sent] = alerts(receiver)
    assert sent["kind"] == "partial" and "quarantine" in sent["text"]
    state = orjson.loads((alerting.home / "alerts" / "state.json").read_bytes())
    assert list(state["open"]) == ["beta:partial"], "kept on disk, so the next `lakebox run` process dedupes"
    on_run_finished(alerting, partial)  # the same run observed twice (runner and CLI): no second alert
    report(alerting, [dataclasses.replace(partial, run_id="another-partial")])
    assert len(alerts(receiver)) == 1


def test_a_freshness_breach_is_checked_by_watch_and_sent_once(alerting: Settings, receiver: Receiver,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEBOX_GAMMA_SLA", "1s")
    settings = Settings.load()
    run_script(settings, [("gamma", False)])
    with watching(settings) as observer:
        wait_for(lambda: kinds(receiver) == [("stale", "gamma:stale")], what="a stale alert")
        sent = alerts(receiver)[0]
        assert sent["pipeline"] == "gamma" and sent["sla_s"] == 1.0 and sent["age_s"] >= 1
        reads = observer.live.reads
        wait_for(lambda: observer.live.reads >= reads + 5, what="several more polls")
        assert len(alerts(receiver)) == 1, "not re-sent on every poll"
        for outcome in run_script(settings, [("gamma", False)]):
            observer.on_run(outcome)  # fresh again: the problem clears ...
        wait_for(lambda: len(alerts(receiver)) == 2, what="... and a new breach is sent again")
    assert kinds(receiver) == [("stale", "gamma:stale")] * 2


def ml_tables(settings: Settings, version: int, drifted: dict[str, bool]) -> None:
    """ml.model_decisions and ml.drift_report, in the tables the ML lifecycle writes."""
    from lakebox.ml import tables

    with open_warehouse(settings) as wh:
        tables.ensure(wh, tables.MODEL_DECISIONS)
        tables.ensure(wh, tables.DRIFT_REPORT)
        at = dt.datetime(2026, 11, 1) + dt.timedelta(days=version)
        wh.execute("insert into ml.model_decisions values ('commit_classifier', ?, 'champion', 'f1_macro', ?, "
                   "null, 'better', ?, 'r')", [str(version), 0.7 + version / 100, at])
        wh.execute("insert into ml.model_decisions values ('commit_classifier', ?, 'challenger', 'f1_macro', 0.1, "
                   "0.7, 'worse', ?, 'r')", [str(version + 100), at + dt.timedelta(hours=1)])
        for feature, flag in drifted.items():
            wh.execute("insert into ml.drift_report values ('commit_classifier', ?, 'psi', ?, null, 0.2, ?, "
                       "null, null, ?)", [feature, 0.3 if flag else 0.01, flag, at])


def test_drift_and_promotions_alert_once_each(alerting: Settings, receiver: Receiver) -> None:
    ml_tables(alerting, 1, {"files_changed": True, "message_len": False})
    report(alerting, run_script(alerting, [("github_commits", False)]))
    got = {a["kind"]: a for a in alerts(receiver)}
    assert set(got) == {"drift", "promoted"}
    assert got["drift"]["features"] == ["files_changed"] and got["drift"]["model"] == "commit_classifier"
    assert got["promoted"]["version"] == "1" and got["promoted"]["metrics"] == {"f1_macro": 0.71}
    report(alerting, run_script(alerting, [("github_commits", False)]))
    assert len(alerts(receiver)) == 2, "same drift, same champion: nothing new"
    ml_tables(alerting, 2, {"files_changed": False, "message_len": False})
    report(alerting, run_script(alerting, [("github_commits", False)]))
    assert kinds(receiver)[2:] == [("promoted", "commit_classifier:promoted:2")]
    ml_tables(alerting, 3, {"files_changed": True})
    report(alerting, run_script(alerting, [("github_commits", False)]))
    assert ("drift", "commit_classifier:drift") in kinds(receiver)[3:], "drift cleared, then flagged again"


def test_a_receiver_that_answers_500_is_retried(alerting: Settings, receiver: Receiver) -> None:
    receiver.statuses.extend([500, 503])
    report(alerting, run_script(alerting, [("delta", True)]))
    assert len(receiver.requests) == 3 and len({b for b in receiver.bodies()}) == 1


def test_a_receiver_that_is_down_never_fails_or_stalls_a_run(settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    monkeypatch.setenv("LAKEBOX_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("LAKEBOX_ALERT_ATTEMPTS", "3")
    monkeypatch.setenv("LAKEBOX_ALERT_BACKOFF", "0.01")
    settings = Settings.load()
    outcomes = run_script(settings, [("epsilon", True)])
    started = time.monotonic()
    after_runs(settings, outcomes)
    assert time.monotonic() - started < 1, "delivery happens in the background"
    assert flush_alerts(10), "retries give up within their budget"
    assert outcomes[0].status == "failed"  # as the pipeline made it; the webhook changed nothing
    logs = "".join(p.read_text() for p in settings.logs_dir.glob("*.jsonl"))
    assert "alert not delivered" in logs
    assert "hushhushhush" not in logs, "the webhook URL is a secret"
    state = settings.home / "alerts" / "state.json"
    assert not state.exists() or "epsilon" not in state.read_text(), "undelivered: tried again next time"
