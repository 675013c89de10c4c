"""Where events go: a JSON-lines file under the home, and an OpenLineage endpoint.

Every event is appended to `$LAKEBOX_HOME/lineage/events.jsonl`. With
LAKEBOX_OPENLINEAGE_URL set it is also written to the spool (`lineage/spool/`, one file per
event, named so that names sort in emission order) before a sender thread posts it; a file
leaves the spool only once the endpoint answered 2xx, so an endpoint that is down, slow or
refusing loses nothing and the next run (or `lakebox lineage flush`) sends what waits, in
order. A retried event is the same bytes (same run id and time). A run waits at most
`BUDGET_S` in all for the endpoint; a 4xx stops sending for the run and is reported once,
with the endpoint's answer.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

BUDGET_S = 1.0
_SEQ = itertools.count()


def lineage_dir(home: Path) -> Path:
    return home / "lineage"


def endpoint(url: str) -> str:
    """Marquez is named by its base URL; events go to its `/api/v1/lineage`."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path="/api/v1/lineage"))
    return url


class Refused(Exception):
    """The endpoint answered 4xx: sending again would not help; the events stay spooled."""


class Delivery:
    """Appends events to the file and, with an endpoint, spools and sends them."""

    def __init__(self, home: Path, url: str | None, api_key: str | None) -> None:
        self.dir = lineage_dir(home)
        self.spool = self.dir / "spool"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = endpoint(url) if url else None
        self.api_key = api_key
        self.refused: str | None = None  # the endpoint's answer to the first refused event
        self.unreachable: str | None = None
        self._wake = threading.Condition()
        self._closing = False
        self._deadline: float | None = None
        self._sender: threading.Thread | None = None
        if self.url:
            self.spool.mkdir(parents=True, exist_ok=True)

    def emit(self, events: list[dict[str, Any]]) -> None:
        lines = b"".join(orjson.dumps(e) + b"\n" for e in events)
        with open(self.dir / "events.jsonl", "ab") as out:
            out.write(lines)
        if not self.url:
            return
        stamp = time.time_ns()
        for event in events:
            name = f"{stamp:020d}-{os.getpid():07d}-{next(_SEQ):06d}.json"
            tmp = self.spool / f".{name}"
            tmp.write_bytes(orjson.dumps(event))
            tmp.rename(self.spool / name)  # whole or absent: the sender never reads half an event
        self._start_sender()
        with self._wake:
            self._wake.notify()

    def finish(self, budget_s: float = BUDGET_S) -> int:
        """Wait (at most `budget_s`) for what is spooled to be sent; the count still waiting."""
        if not self.url:
            return 0
        self._start_sender()
        with self._wake:
            self._closing = True
            self._deadline = time.monotonic() + budget_s
            self._wake.notify()
        assert self._sender is not None
        self._sender.join(budget_s + 0.05)
        return len(waiting(self.spool))

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_loop, name="lakebox-openlineage", daemon=True)
            self._sender.start()

    def _send_loop(self) -> None:
        import httpx

        with _spool_lock(self.spool) as held:
            if not held:  # another process is sending this spool; ours waits there for it or the next run
                return
            with httpx.Client(headers=self._headers()) as client:
                while True:
                    if self.refused or self.unreachable:
                        return
                    pending = waiting(self.spool)
                    if not pending:
                        with self._wake:
                            if self._closing:
                                return
                            self._wake.wait(0.2)
                        continue
                    left = None if self._deadline is None else self._deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return
                    self._send(client, pending[0], min(left or BUDGET_S, BUDGET_S))

    def _send(self, client: Any, path: Path, timeout: float) -> None:
        import httpx

        try:
            answer = client.post(self.url, content=path.read_bytes(), timeout=timeout)
        except httpx.HTTPError as exc:
            self.unreachable = f"{type(exc).__name__}: {exc}"
            return
        if answer.is_success:
            path.unlink(missing_ok=True)
        elif 400 <= answer.status_code < 500:
            self.refused = f"HTTP {answer.status_code}: {answer.text[:300]}"
        else:
            self.unreachable = f"HTTP {answer.status_code}"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


def waiting(spool: Path) -> list[Path]:
    """Spooled events in the order they were emitted."""
    if not spool.is_dir():
        return []
    return sorted(p for p in spool.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


class _spool_lock:
    """One sender per spool across processes, or an event could go out twice."""

    def __init__(self, spool: Path) -> None:
        self.path = spool / ".sending"

    def __enter__(self) -> bool:
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock
