"""Alerts to a Slack-compatible webhook (LAKEBOX_ALERT_WEBHOOK_URL): failed and partial
runs, freshness breaches, drift, promotions.

An open problem (a key such as `orders:failed`) is sent once and not again until it
clears (a later good run, fresh data, no drift), so a watcher polling every few seconds
does not flood the channel. The keys are kept in $LAKEBOX_HOME/alerts/state.json, so
one-shot runs from cron dedupe too. Delivery happens on a background thread with retries
and backoff; a webhook that is down costs a warning in the log, never a run. A problem
whose alert could not be delivered is not marked sent, so the next check tries again.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lakebox import core_settings as core
from lakebox.log import get_logger
from lakebox.observability.metrics import COUNTERS
from lakebox.observability.sla import freshness_sla
from lakebox.settings import redact

if TYPE_CHECKING:
    from lakebox.observability.snapshot import OpsSnapshot
    from lakebox.runner import RunOutcome
    from lakebox.settings import Settings

WEBHOOK_ENV = "LAKEBOX_ALERT_WEBHOOK_URL"


@dataclass(frozen=True)
class Alert:
    key: str  # the open problem (or, for a promotion, the event) this is about
    kind: str  # failed | partial | stale | drift | promoted
    text: str
    fields: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> bytes:
        return orjson.dumps({"text": self.text, "kind": self.kind, "key": self.key, **self.fields}, default=str)


class AlertState:
    """Which problems are open (already sent) and which events were announced, on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {"open": {}}
        return data if isinstance(data, dict) and isinstance(data.get("open"), dict) else {"open": {}}

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        tmp.replace(self.path)

    def is_open(self, key: str) -> bool:
        with self._lock:
            return key in self._load()["open"]

    def mark(self, key: str) -> None:
        with self._lock:
            data = self._load()
            data["open"][key] = time.time()
            self._save(data)

    def clear(self, *keys: str) -> list[str]:
        """Forget problems that have cleared; returns the keys that were open."""
        with self._lock:
            data = self._load()
            cleared = [k for k in keys if data["open"].pop(k, None) is not None]
            if cleared:
                self._save(data)
            return cleared

    def open_keys(self) -> set[str]:
        with self._lock:
            return set(self._load()["open"])


class AlertSender:
    """Posts alerts from a background thread; retries with backoff; never raises."""

    def __init__(self, url: str, state: AlertState, env: Mapping[str, str]) -> None:
        self.url, self.state = url, state
        self.attempts = core.ALERT_ATTEMPTS.read(env)
        self.backoff = core.ALERT_BACKOFF.read(env)
        self.timeout = core.ALERT_TIMEOUT.read(env)
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=200)
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._thread = threading.Thread(target=self._loop, name="lakebox-alerts", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> bool:
        """Queue `alert` unless its problem is already open or on its way; True if queued."""
        with self._lock:
            if alert.key in self._pending or self.state.is_open(alert.key):
                return False
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                get_logger().warning("alert dropped: too many waiting", kind=alert.kind, key=alert.key)
                return False
            self._pending.add(alert.key)
            self._busy += 1
            return True

    def _loop(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout, headers={"Content-Type": "application/json"}) as client:
            while True:
                self._handle(client, self._queue.get())

    def _handle(self, client: Any, alert: Alert) -> None:
        delivered = self._deliver(client, alert)
        with self._lock:
            if delivered:
                self.state.mark(alert.key)
            self._pending.discard(alert.key)
            self._busy -= 1
            self._idle.notify_all()

    def _deliver(self, client: Any, alert: Alert) -> bool:
        import httpx

        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = client.post(self.url, content=alert.payload())
                if response.status_code < 300:
                    COUNTERS.add(COUNTERS.alerts, (alert.kind, "sent"), 1)
                    return True
                last = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refuses this payload; retrying will not help
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 60.0))
        COUNTERS.add(COUNTERS.alerts, (alert.kind, "failed"), 1)
        get_logger().warning("alert not delivered; it is sent again at the next check while the problem lasts",
                             kind=alert.kind, key=alert.key, webhook=redact(self.url), error=redact(last))
        return False

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for queued alerts; True when none is left."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


class Alerting:
    """Turns runs and snapshots into alerts and clears problems that went away."""

    def __init__(self, settings: Settings, url: str) -> None:
        self.env = settings.env
        self.sender = AlertSender(url, AlertState(settings.home / "alerts" / "state.json"), settings.env)

    def run_finished(self, outcome: RunOutcome) -> None:
        p = outcome.pipeline
        fields = {"pipeline": p, "run_id": outcome.run_id, "status": outcome.status,
                  "duration_s": round(outcome.duration_s, 3), "error": outcome.error}
        if outcome.status == "failed":
            first = (outcome.error or "").splitlines()[0] if outcome.error else "no error recorded"
            self.sender.send(Alert(f"{p}:failed", "failed", f":red_circle: lakebox {p} run failed: {first}", fields))
        elif outcome.status == "partial":
            self.sender.send(Alert(f"{p}:partial", "partial",
                                   f":large_yellow_circle: lakebox {p} run partial: input quarantined "
                                   f"(`lakebox quarantine list`)", fields))
            self.sender.state.clear(f"{p}:failed")
        elif outcome.status == "success":
            self.sender.state.clear(f"{p}:failed", f"{p}:partial")

    def check(self, snap: OpsSnapshot, now: float | None = None) -> None:
        """Freshness, drift and promotions as the ops and ml tables show them now."""
        now = time.time() if now is None else now
        for pipeline, last in snap.last_success.items():
            sla, age = freshness_sla(self.env, pipeline), now - last
            key = f"{pipeline}:stale"
            if age > sla:
                self.sender.send(Alert(key, "stale", f":hourglass: lakebox {pipeline} is stale: last success "
                                       f"{age:.0f}s ago, SLA {sla:.0f}s",
                                       {"pipeline": pipeline, "age_s": round(age), "sla_s": sla}))
            else:
                self.sender.state.clear(key)
        models = {m for m, _ in snap.drift}
        for model in sorted(models):
            flagged = sorted(f for (m, f), v in snap.drift.items() if m == model and v)
            key = f"{model}:drift"
            if flagged:
                self.sender.send(Alert(key, "drift", f":warning: lakebox model {model}: drift flagged on "
                                       f"{', '.join(flagged)}", {"model": model, "features": flagged}))
            else:
                self.sender.state.clear(key)
        for model, promotion in sorted(snap.promotions.items()):
            key = f"{model}:promoted:{promotion.version}"
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(promotion.metrics.items()))
            self.sender.send(Alert(key, "promoted", f":trophy: lakebox model {model} version {promotion.version} "
                                   f"promoted to champion ({metrics})",
                                   {"model": model, "version": promotion.version, "metrics": promotion.metrics}))

    def flush(self, timeout: float) -> bool:
        return self.sender.flush(timeout)
