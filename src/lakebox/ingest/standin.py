"""Stand-in APIs: lakebox's own servers for the sources a demo or a test cannot reach.

Shared by every bundled stand-in (`lakebox orders-api`, `lakebox github-api`): serving a
FastAPI app on a thread or in the foreground, and a queue of injected faults that the next
requests meet. Each stand-in names its fault kinds by subclassing `Fault`:

    @dataclass
    class Fault(standin.Fault):
        KINDS: ClassVar[tuple[str, ...]] = ("429", "500", "slow")
        API: ClassVar[str] = "orders API"

Faults queue up: the first affects the next ``count`` requests (-1: all of them, forever),
then the next takes over.
"""

from __future__ import annotations

import math
import socket
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import uvicorn

from lakebox.errors import ConfigError, LakeboxError

if TYPE_CHECKING:
    from fastapi import FastAPI

_STARTUP_TIMEOUT_S: Final = 30.0
_BACKLOG: Final = 2048
_SHUTDOWN_TIMEOUT_S: Final = 10.0


@dataclass
class Fault:
    """One misbehaviour for the next ``count`` requests (-1: every request from now on).

    ``retry_after`` is in whole seconds (a 429's Retry-After, a rate limit's reset);
    ``delay`` is how long a ``slow`` response waits, in seconds.
    """

    KINDS: ClassVar[tuple[str, ...]] = ()
    API: ClassVar[str] = "stand-in API"

    kind: str
    count: int = 1
    retry_after: int = 1
    delay: float = 2.0

    def __post_init__(self) -> None:
        api = self.API
        if self.kind not in self.KINDS:
            raise ConfigError(f"{api} fault: unknown kind {self.kind!r}; use one of {', '.join(self.KINDS)}")
        if not _is_int(self.count) or not (self.count >= 1 or self.count == -1):
            raise ConfigError(f"{api} fault {self.kind}: count must be >= 1, or -1 for always; got {self.count!r}")
        if not _is_int(self.retry_after) or self.retry_after < 0:
            raise ConfigError(
                f"{api} fault {self.kind}: retry_after must be whole seconds >= 0; got {self.retry_after!r}"
            )
        if not (_is_int(self.delay) or isinstance(self.delay, float)) or not 0 <= self.delay < math.inf:
            raise ConfigError(f"{api} fault {self.kind}: delay must be seconds >= 0; got {self.delay!r}")

    @classmethod
    def parse(cls, spec: str) -> Any:
        """``kind[:count][:key=value...]``, e.g. ``429:2:retry_after=0`` or ``slow:delay=0.5``."""
        kind, *parts = spec.strip().split(":")
        fields: dict[str, Any] = {}
        for position, part in enumerate(parts):
            key, sep, value = part.partition("=")
            if not sep and position == 0:
                key, value = "count", part
            try:
                if key in ("count", "retry_after"):
                    fields[key] = int(value)
                elif key == "delay":
                    fields[key] = float(value)
                else:
                    raise ConfigError(
                        f"{cls.API} fault {spec!r}: unknown setting {key!r}; use count, retry_after or delay"
                    )
            except ValueError as exc:
                raise ConfigError(f"{cls.API} fault {spec!r}: {key} is not a number: {value!r}") from exc
        return cls(kind=kind, **fields)

    @classmethod
    def from_json(cls, payload: object) -> Any:
        """A fault from a ``POST /_faults`` body."""
        if not isinstance(payload, Mapping) or "kind" not in payload:
            raise ConfigError(f'{cls.API} fault: send a JSON object such as {{"kind": "500", "count": 1}}')
        unknown = set(payload) - {"kind", "count", "retry_after", "delay"}
        if unknown:
            raise ConfigError(
                f"{cls.API} fault: unknown settings {sorted(unknown)}; use kind, count, retry_after, delay"
            )
        return cls(**payload)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "retry_after": self.retry_after, "delay": self.delay}


F = TypeVar("F", bound=Fault)


class FaultPlan(Generic[F]):
    """The queue of faults that the next requests meet; safe across threads.

    A stand-in subclasses it with ``fault_type`` set to its own `Fault` subclass."""

    fault_type: ClassVar[type[Fault]] = Fault

    def __init__(self, faults: Iterable[F] = ()) -> None:
        self._faults = list(faults)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Any:
        return cls(cls.fault_type.parse(spec) for spec in specs)

    def add(self, fault: F) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[F]:
        with self._lock:
            return [replace(fault) for fault in self._faults]

    def take(self) -> F | None:
        """The fault for this request, using up one of its count."""
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            if fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.pop(0)
            return fault


class RunningServer:
    """A uvicorn server on a background thread; ``stop()`` or leave the ``with`` block to end it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self.url = url
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(_SHUTDOWN_TIMEOUT_S)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class _ThreadServer(uvicorn.Server):
    """Tells a waiting thread when it is accepting connections, or has given up."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.settled.set()

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            super().run(sockets=sockets)
        finally:
            self.settled.set()


def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``app`` on a daemon thread; returns once it accepts connections. Port 0: any free port."""
    name = app.title
    sock = _listen_socket(name, host, port)
    server = _ThreadServer(_uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"lakebox {name}", daemon=True)
    thread.start()
    server.settled.wait(_STARTUP_TIMEOUT_S)
    if not server.started:
        server.should_exit = True
        sock.close()
        raise LakeboxError(f"{name} did not start on {host}:{port}; see the uvicorn messages above")
    return RunningServer(server, thread, _url(host, sock.getsockname()[1]))


def serve_forever(app: FastAPI, host: str, port: int, banner: str) -> None:
    """Serve ``app`` in the foreground until interrupted; prints ``<title> on <url> (<banner>)``."""
    sock = _listen_socket(app.title, host, port)
    print(f"{app.title} on {_url(host, sock.getsockname()[1])} ({banner})", file=sys.stderr, flush=True)
    uvicorn.Server(_uvicorn_config(app)).run(sockets=[sock])


def _uvicorn_config(app: FastAPI) -> uvicorn.Config:
    # log_config=None: leave the process's logging alone (lakebox logs JSON lines).
    return uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )


def _listen_socket(name: str, host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets; without it every
    # response waits 40 ms for a delayed ACK between its header and body writes.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(_BACKLOG)  # from now on, connections wait for uvicorn instead of failing
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{name} cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from exc
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
