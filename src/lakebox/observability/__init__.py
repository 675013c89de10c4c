"""Observability: Prometheus metrics, logs shipped to Loki, alert webhooks, retention.

The rest of lakebox calls a few functions here, each cheap and none able to fail a run:

    configure(settings)              after logging is configured: Loki shipping (LAKEBOX_LOKI_URL)
    on_run_finished(settings, run)   after every run (runner, watch, serve): metrics, run alerts
    after_runs(settings, runs, wh)   end of a one-shot `lakebox run`: Pushgateway, checks
    watching(settings, port)         around `lakebox watch`: /metrics, freshness/drift checks
    note_http_retry(source, wait_s, rate_limited)   from the HTTP layer, per retry
    send_alert(settings, key, kind, text, fields)   an event found elsewhere (the ML registry)

Everything is switched on by settings (URLs in the environment); with none set, these
cost next to nothing and import nothing heavy.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lakebox import core_settings as core

if TYPE_CHECKING:
    from lakebox.observability.alerts import Alerting
    from lakebox.observability.exporter import Observer
    from lakebox.observability.loki import LokiHandler
    from lakebox.runner import RunOutcome
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

__all__ = ["after_runs", "configure", "flush_alerts", "note_http_retry", "on_run_finished", "send_alert",
           "stop_log_shipping", "watching"]

_lock = threading.Lock()
_seen: collections.deque[str] = collections.deque(maxlen=1000)  # run ids already observed
_alerting: dict[tuple[str, str], Alerting] = {}
_loki: LokiHandler | None = None
_exporting = [0]  # how many /metrics observers are up: in-process series are only kept for them


def configure(settings: Settings) -> None:
    """Ship the lakebox logger's lines to Loki when LAKEBOX_LOKI_URL is set (once per
    process; again if logging was reconfigured and dropped the handler)."""
    global _loki
    url = settings.env.get("LAKEBOX_LOKI_URL")
    logger = logging.getLogger("lakebox")
    if not url or (_loki is not None and _loki in logger.handlers):
        return
    from lakebox.log import JsonLinesFormatter
    from lakebox.observability.loki import LokiHandler

    handler = LokiHandler(url, settings.env)
    handler.setFormatter(JsonLinesFormatter())
    logger.addHandler(handler)
    if _loki is None:  # at exit: push what is left, waiting at most LAKEBOX_LOKI_FLUSH seconds
        atexit.register(stop_log_shipping, core.LOKI_FLUSH.read(settings.env))
    _loki = handler


def stop_log_shipping(timeout: float = 5.0) -> int:
    """Push what is left (up to `timeout` s), detach the Loki handler and warn, in the file
    logs, how many lines were not shipped. Returns that number."""
    global _loki
    handler, _loki = _loki, None
    if handler is None:
        return 0
    import time

    from lakebox.log import get_logger

    deadline = time.monotonic() + timeout
    handler.flush_within(timeout)
    logging.getLogger("lakebox").removeHandler(handler)
    handler.close(max(0.1, deadline - time.monotonic()))
    handler.report(get_logger())
    return handler.unshipped


def _alerts_for(settings: Settings) -> Alerting | None:
    url = settings.env.get("LAKEBOX_ALERT_WEBHOOK_URL")
    if not url:
        return None
    with _lock:
        key = (str(settings.home), url)
        if key not in _alerting:
            from lakebox.observability.alerts import Alerting

            _alerting[key] = Alerting(settings, url)
            if len(_alerting) == 1:  # at exit: deliver what is queued, within LAKEBOX_ALERT_FLUSH seconds
                atexit.register(flush_alerts, core.ALERT_FLUSH.read(settings.env))
        return _alerting[key]


def flush_alerts(timeout: float = 10.0) -> bool:
    """Wait up to `timeout` seconds for queued alerts to be delivered (or given up)."""
    import time

    deadline = time.monotonic() + timeout
    with _lock:
        senders = list(_alerting.values())
    return all(a.flush(max(0.0, deadline - time.monotonic())) for a in senders)


def on_run_finished(settings: Settings, outcome: RunOutcome) -> None:
    """Metrics and run alerts for one finished run; a second call for the same run is a no-op."""
    with _lock:
        if outcome.run_id in _seen:
            return
        _seen.append(outcome.run_id)
    try:
        if _exporting[0] or settings.env.get("LAKEBOX_PUSHGATEWAY_URL"):
            from lakebox.observability.metrics import observe_run

            observe_run(outcome)
        alerting = _alerts_for(settings)
        if alerting is not None:
            alerting.run_finished(outcome)
    except Exception as exc:  # noqa: BLE001 - observability never fails a run
        _warn("run not observed", exc)


def after_runs(settings: Settings, outcomes: Sequence[RunOutcome], warehouse: Warehouse | None = None) -> None:
    """End of a one-shot `lakebox run`: observe the runs, push them to the Pushgateway
    (LAKEBOX_PUSHGATEWAY_URL) and check freshness, drift and promotions. Pass the run's
    warehouse while it is open: reading it then costs milliseconds, opening it again
    hundreds. Alerts are delivered in the background; the process waits for them at exit
    (at most LAKEBOX_ALERT_FLUSH seconds)."""
    for outcome in outcomes:
        on_run_finished(settings, outcome)
    alerting = _alerts_for(settings)
    if not settings.env.get("LAKEBOX_PUSHGATEWAY_URL") and alerting is None:
        return
    try:
        from lakebox.observability.exporter import push_runs
        from lakebox.observability.snapshot import read_settings_snapshot, read_snapshot

        snap = read_snapshot(warehouse) if warehouse is not None else read_settings_snapshot(settings)
        push_runs(settings, snap, [o.pipeline for o in outcomes])
        if alerting is not None:
            alerting.check(snap)
    except Exception as exc:  # noqa: BLE001 - observability never fails a run
        _warn("runs not reported", exc)


@contextmanager
def watching(settings: Settings, port: int | None = None) -> Iterator[Observer]:
    """Around `lakebox watch`: /metrics on `port` (else LAKEBOX_METRICS_PORT; none: no
    endpoint) on LAKEBOX_METRICS_HOST (loopback by default), and the periodic checks.
    Pass the observer's `on_run` to the watch loop."""
    from lakebox.observability.exporter import Observer

    if port is None:
        port = core.METRICS_PORT.optional(settings.env)
    observer = Observer(settings, port, _alerts_for(settings), on_run_finished)
    exporting = 1 if port is not None else 0
    _exporting[0] += exporting
    try:
        yield observer
    finally:
        _exporting[0] -= exporting
        observer.close()


def note_http_retry(source: str, wait_s: float, rate_limited: bool = False) -> None:
    """The HTTP layer calls this before each retry's wait: counts the retry, and the wait
    when the source asked for it (429, Retry-After, a rate-limit reset header)."""
    from lakebox.log import _context
    from lakebox.observability.metrics import COUNTERS

    key = (source, _context.get({}).get("pipeline", ""))  # outside a run: no pipeline
    COUNTERS.add(COUNTERS.retries, key, 1)
    if rate_limited:
        COUNTERS.add(COUNTERS.waits, key, wait_s)


def send_alert(settings: Settings, key: str, kind: str, text: str, fields: dict[str, object] | None = None) -> bool:
    """Alert about an event the caller found (sent once per `key`, like every alert); a
    no-op without LAKEBOX_ALERT_WEBHOOK_URL. True if queued; never raises."""
    try:
        alerting = _alerts_for(settings)
        if alerting is None:
            return False
        from lakebox.observability.alerts import Alert

        return alerting.sender.send(Alert(key, kind, text, dict(fields or {})))
    except Exception as exc:  # noqa: BLE001 - observability never fails a run
        _warn("alert not sent", exc)
        return False


def _warn(what: str, exc: Exception) -> None:
    from lakebox.log import get_logger
    from lakebox.settings import redact

    get_logger().warning(f"observability: {what}", error=redact(f"{type(exc).__name__}: {exc}"))
