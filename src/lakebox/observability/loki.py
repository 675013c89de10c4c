"""Ship the JSON-lines logs to Loki (LAKEBOX_LOKI_URL) as well as to the files.

`emit` only appends the record (with its log context) to a bounded buffer; a background
thread formats the lines (formatting with redaction costs ~0.7 ms a line here, too much
for the run's own thread to pay twice) and pushes them in batches to `/loki/api/v1/push`.
Labels are few and bounded (app, pipeline, stage, level); run_id travels as structured
metadata, so every run does not make a new stream. When Loki is
down, slow or full the buffer drops its oldest lines (counted), a batch that keeps
failing is given up, and at shutdown a warning in the file logs says how many lines were
not shipped. The file logs are written by their own handler and stay complete.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson

from lakebox import core_settings as core
from lakebox.observability.metrics import COUNTERS
from lakebox.settings import redact

LOKI_ENV = "LAKEBOX_LOKI_URL"
_LABELS = ("pipeline", "stage", "level")


class LokiHandler(logging.Handler):
    def __init__(self, url: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__(logging.DEBUG)
        env = env or {}
        self.url = url.rstrip("/") + ("" if url.rstrip("/").endswith("/loki/api/v1/push") else "/loki/api/v1/push")
        self.batch_lines = core.LOKI_BATCH.read(env)
        self.interval = core.LOKI_INTERVAL.read(env)
        self.timeout = core.LOKI_TIMEOUT.read(env)
        self.attempts = core.LOKI_ATTEMPTS.read(env)
        self._buffer: collections.deque[tuple[logging.LogRecord, contextvars.Context]] = collections.deque(
            maxlen=core.LOKI_BUFFER.read(env))
        self._cond = threading.Condition()
        self._stop = False
        self._in_flight = 0
        self.unshipped = 0
        self.shipped = 0
        self._warned = 0
        self._thread = threading.Thread(target=self._loop, name="lakebox-loki", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            context = contextvars.copy_context()  # run, pipeline and stage, for formatting later
            with self._cond:
                if len(self._buffer) == self._buffer.maxlen:
                    self._lost(1)  # the oldest line falls out
                self._buffer.append((record, context))
                if len(self._buffer) >= self.batch_lines:
                    self._cond.notify()
        except Exception:  # noqa: BLE001 - logging must never take the pipeline down
            self.handleError(record)

    def _lost(self, lines: int) -> None:
        if not lines:
            return
        self.unshipped += lines
        COUNTERS.add_unshipped(lines)

    def _loop(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout, headers={"Content-Type": "application/json"}) as client:
            self._run(client)

    def _run(self, client: Any) -> None:
        while True:
            with self._cond:
                if not self._buffer and not self._stop:
                    self._cond.wait(self.interval)
                elif len(self._buffer) < self.batch_lines and not self._stop:
                    self._cond.wait(self.interval)
                if self._stop and not self._buffer:
                    return
                records = [self._buffer.popleft() for _ in range(min(self.batch_lines, len(self._buffer)))]
                self._in_flight = len(records)
            if records:
                batch = [line for line in (self._line(r, c) for r, c in records) if line is not None]
                sent = self._push(client, batch)
                with self._cond:
                    self._lost(len(records) - len(batch))
                    if sent:
                        self.shipped += len(batch)
                    else:
                        self._lost(len(batch))
                    self._in_flight = 0
                    self._cond.notify_all()

    def _line(self, record: logging.LogRecord, context: contextvars.Context) -> tuple[int, str] | None:
        try:
            return int(record.created * 1e9), context.run(self.format, record)
        except Exception:  # noqa: BLE001 - a line that cannot be formatted is not shipped (the file handler says why)
            return None

    def _push(self, client: Any, batch: list[tuple[int, str]]) -> bool:
        import httpx

        body = orjson.dumps({"streams": streams(batch)})
        for attempt in range(1, self.attempts + 1):
            try:
                response = client.post(self.url, content=body)
                if response.status_code < 300:
                    return True
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    return False  # Loki refuses this batch (too old, too big): retrying will not help
            except httpx.HTTPError:
                pass
            if attempt < self.attempts and not self._stop:
                time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
        return False

    def flush_within(self, timeout: float) -> int:
        """Push what is buffered, waiting up to `timeout` s; returns lines not shipped so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while (self._buffer or self._in_flight) and time.monotonic() < deadline:
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
                self._cond.notify_all()
            return self.unshipped + len(self._buffer) + self._in_flight

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after a last push; lines still waiting count as not shipped."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            self._lost(len(self._buffer) + self._in_flight)
            self._buffer.clear()
        super().close()

    def report(self, log: Any) -> None:
        """Warn (once per new loss) how many lines did not reach Loki; the files have them all."""
        if self.unshipped > self._warned:
            self._warned = self.unshipped
            log.warning("log lines not shipped to Loki; the file logs have them all",
                        unshipped=self.unshipped, shipped=self.shipped, loki=redact(self.url))


def streams(batch: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Group JSON lines by their labels into Loki push streams; run_id as structured metadata."""
    grouped: dict[tuple[str, ...], list[list[Any]]] = {}
    for ns, line in batch:
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed = {}
        labels = tuple(str(parsed.get(name) or "") for name in _LABELS)
        value: list[Any] = [str(ns), line]
        if parsed.get("run_id"):
            value.append({"run_id": str(parsed["run_id"])})
        grouped.setdefault(labels, []).append(value)
    return [
        {"stream": {"app": "lakebox", **{n: v for n, v in zip(_LABELS, labels, strict=True) if v}}, "values": values}
        for labels, values in grouped.items()
    ]
