"""The synthetic orders REST API, with the faults a real source throws at its clients.

    GET /v1/orders?updated_since=<ISO-8601>&cursor=<opaque>&limit=<1..10000>
        200 {"records": [...], "next_cursor": "<str>" | null}
        records ordered by (updated_at, order_id); updated_since is exclusive; the cursor
        alone resumes strictly after the last record returned; next_cursor is null when no
        record follows. Bad limit or updated_since: 422; bad cursor: 400. Both as
        {"error": "...", "parameter": "..."}.
    GET /health                 {"ok": true, "orders": N}
    GET|POST|DELETE /_faults    list, add ({"kind", "count", "retry_after", "delay"}), clear

Faults queue up: the first fault affects the next ``count`` requests to /v1/orders (-1:
all of them, forever), then the next fault takes over. Data faults spoil the records of
the page but keep its next_cursor, so paging goes on as if the page were clean.
"""

from __future__ import annotations

import asyncio
import math
import socket
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Final, Literal, get_args

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lakebox.errors import ConfigError, LakeboxError
from lakebox.pipelines.orders.generator import decode_cursor, generate_orders, page_bytes, parse_iso_utc

FaultKind = Literal[
    "429",
    "500",
    "slow",
    "malformed",
    "rename_field",
    "missing_field",
    "null_ids",
    "negative_amount",
    "duplicate_ids",
    "unknown_status",
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)

DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 10_000
_STARTUP_TIMEOUT_S: Final = 30.0
_BACKLOG: Final = 2048
_SHUTDOWN_TIMEOUT_S: Final = 10.0


@dataclass
class Fault:
    """One misbehaviour for the next ``count`` requests (-1: every request from now on).

    ``retry_after`` is the 429's Retry-After in whole seconds; ``delay`` is how long a
    ``slow`` response waits, in seconds.
    """

    kind: FaultKind
    count: int = 1
    retry_after: int = 1
    delay: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"orders API fault: unknown kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if not _is_int(self.count) or not (self.count >= 1 or self.count == -1):
            raise ConfigError(f"orders API fault {self.kind}: count must be >= 1, or -1 for always; got {self.count!r}")
        if not _is_int(self.retry_after) or self.retry_after < 0:
            raise ConfigError(
                f"orders API fault {self.kind}: retry_after must be whole seconds >= 0; got {self.retry_after!r}"
            )
        if not (_is_int(self.delay) or isinstance(self.delay, float)) or not 0 <= self.delay < math.inf:
            raise ConfigError(f"orders API fault {self.kind}: delay must be seconds >= 0; got {self.delay!r}")

    @classmethod
    def parse(cls, spec: str) -> Fault:
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
                        f"orders API fault {spec!r}: unknown setting {key!r}; use count, retry_after or delay"
                    )
            except ValueError as exc:
                raise ConfigError(f"orders API fault {spec!r}: {key} is not a number: {value!r}") from exc
        return cls(kind=kind, **fields)  # type: ignore[arg-type]  # __post_init__ checks kind

    @classmethod
    def from_json(cls, payload: object) -> Fault:
        """A fault from a ``POST /_faults`` body."""
        if not isinstance(payload, Mapping) or "kind" not in payload:
            raise ConfigError('orders API fault: send a JSON object such as {"kind": "429", "count": 1}')
        unknown = set(payload) - {"kind", "count", "retry_after", "delay"}
        if unknown:
            raise ConfigError(
                f"orders API fault: unknown settings {sorted(unknown)}; use kind, count, retry_after, delay"
            )
        return cls(**payload)


class FaultPlan:
    """The queue of faults that the next requests to /v1/orders meet; safe across threads."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._faults = list(faults)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, specs: Iterable[str]) -> FaultPlan:
        return cls(Fault.parse(spec) for spec in specs)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(fault)) for fault in self._faults]

    def take(self) -> Fault | None:
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


class _BadRequest(Exception):
    def __init__(self, status: int, parameter: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.parameter = parameter


class _OrderIndex:
    """Where a page starts: binary search over the table's (updated_at, order_id) order."""

    def __init__(self, table: pa.Table) -> None:
        self.rows = table.num_rows
        self._updated_s = table.column("updated_at").cast(pa.int64()).to_numpy() // 1_000_000
        order_numbers = pc.utf8_slice_codeunits(table.column("order_id"), start=len("ORD-"))
        self._order_numbers = order_numbers.cast(pa.int64()).to_numpy()

    def first_after_time(self, epoch_s: int) -> int:
        return int(np.searchsorted(self._updated_s, epoch_s, side="right"))

    def first_after(self, updated_s: int, order_number: int) -> int:
        low = int(np.searchsorted(self._updated_s, updated_s, side="left"))
        high = int(np.searchsorted(self._updated_s, updated_s, side="right"))
        return low + int(np.searchsorted(self._order_numbers[low:high], order_number, side="right"))

    def page_start(self, query: Mapping[str, str]) -> tuple[int, int]:
        """(first row, limit) of the page a query asks for."""
        raw_limit = query.get("limit") or str(DEFAULT_LIMIT)
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise _BadRequest(422, "limit", f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw_limit!r}")
        start = 0
        if since := query.get("updated_since"):
            try:
                start = self.first_after_time(parse_iso_utc(since))
            except ValueError:
                raise _BadRequest(422, "updated_since", f"updated_since is not an ISO-8601 time: {since!r}") from None
        if cursor := query.get("cursor"):
            try:
                start = max(start, self.first_after(*decode_cursor(cursor)))
            except ValueError as exc:
                raise _BadRequest(400, "cursor", f"{exc}; send back a next_cursor this API returned") from None
        return start, limit


def create_app(orders: int, seed: int, faults: FaultPlan | None = None) -> FastAPI:
    """The orders API over ``generate_orders(orders, seed)``; ``app.state.faults`` is its plan."""
    table = generate_orders(orders, seed)
    index = _OrderIndex(table)
    plan = faults if faults is not None else FaultPlan()
    app = FastAPI(title="lakebox synthetic orders", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.faults = plan
    app.state.table = table

    @app.get("/v1/orders")
    async def list_orders(request: Request) -> Response:
        fault = plan.take()
        if fault is not None and fault.kind == "429":
            return JSONResponse(
                {"error": "rate limited (injected fault)", "retry_after": fault.retry_after},
                status_code=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        if fault is not None and fault.kind == "500":
            return JSONResponse({"error": "internal error (injected fault)"}, status_code=500)
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        try:
            start, limit = index.page_start(request.query_params)
        except _BadRequest as exc:
            return JSONResponse({"error": str(exc), "parameter": exc.parameter}, status_code=exc.status)
        body = page_bytes(table, start, limit)
        if fault is not None and fault.kind != "slow":
            body = _spoil(body, fault.kind)
        return Response(body, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "orders": index.rows}

    @app.get("/_faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [asdict(fault) for fault in plan.pending()]}

    @app.post("/_faults", status_code=201)
    async def add_fault(request: Request) -> Response:
        try:
            plan.add(Fault.from_json(orjson.loads(await request.body())))
        except (orjson.JSONDecodeError, ConfigError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({"faults": [asdict(fault) for fault in plan.pending()]}, status_code=201)

    @app.delete("/_faults")
    async def clear_faults() -> dict[str, Any]:
        plan.clear()
        return {"faults": []}

    return app


def _spoil(body: bytes, kind: str) -> bytes:
    """The page body with a data fault applied to about one record in ten (at least one)."""
    if kind == "malformed":
        return body[: len(body) // 2]  # a proper prefix of a JSON object never parses
    page = orjson.loads(body)
    records: list[dict[str, Any]] = page["records"]
    hit = range(0, len(records), 10)
    if kind == "rename_field":
        page["records"] = [
            {("order_amount" if key == "amount" else key): value for key, value in record.items()} for record in records
        ]
    elif kind == "missing_field":
        for record in records:
            del record["customer_id"]
    elif kind == "null_ids":
        for i in hit:
            records[i]["order_id"] = None
    elif kind == "negative_amount":
        for i in hit:
            records[i]["amount"] = -(records[i]["amount"] or 1.0)
    elif kind == "unknown_status":
        for i in hit:
            records[i]["status"] = "lost"
    elif kind == "duplicate_ids":
        for i in reversed(hit):
            records.insert(i + 1, dict(records[i]))
    return orjson.dumps(page)


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
    sock = _listen_socket(host, port)
    server = _ThreadServer(_uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="lakebox-orders-api", daemon=True)
    thread.start()
    server.settled.wait(_STARTUP_TIMEOUT_S)
    if not server.started:
        server.should_exit = True
        sock.close()
        raise LakeboxError(f"orders API did not start on {host}:{port}; see the uvicorn messages above")
    return RunningServer(server, thread, _url(host, sock.getsockname()[1]))


def serve_forever(host: str, port: int, orders: int, seed: int, fault_specs: Sequence[str] = ()) -> None:
    """Serve the orders API in the foreground until interrupted (``lakebox orders-api``)."""
    app = create_app(orders, seed, FaultPlan.parse(fault_specs))
    sock = _listen_socket(host, port)
    url = _url(host, sock.getsockname()[1])
    print(f"orders API on {url} ({orders} orders, seed {seed})", file=sys.stderr, flush=True)
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


def _listen_socket(host: str, port: int) -> socket.socket:
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
        raise ConfigError(f"orders API cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from exc
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
