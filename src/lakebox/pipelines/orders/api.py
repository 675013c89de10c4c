"""The synthetic orders REST API, with the faults a real source throws at its clients.

    GET /v1/orders?updated_since=<ISO-8601>&cursor=<opaque>&limit=<1..10000>
        200 {"records": [...], "next_cursor": "<str>" | null}
        records ordered by (updated_at, order_id); updated_since is exclusive; the cursor
        alone resumes strictly after the last record returned; next_cursor is null when no
        record follows. Bad limit or updated_since: 422; bad cursor: 400. Both as
        {"error": "...", "parameter": "..."}.
    GET /health                 {"ok": true, "orders": N}
    GET|POST|DELETE /_faults    list, add ({"kind", "count", "retry_after", "delay"}), clear

Faults queue up for requests to /v1/orders (see `lakebox.ingest.standin`, which also serves
the app). Data faults spoil the records of the page but keep its next_cursor, so paging
goes on as if the page were clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, get_args

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lakebox.ingest import standin
from lakebox.ingest.standin import RunningServer, serve_in_thread
from lakebox.pipelines.orders.generator import as_numpy, decode_cursor, generate_orders, page_bytes, parse_iso_utc

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
__all__ = ["FAULT_KINDS", "Fault", "FaultPlan", "RunningServer", "create_app", "serve_forever", "serve_in_thread"]

FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)

DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 10_000


@dataclass
class Fault(standin.Fault):
    """One misbehaviour of the orders API (see `lakebox.ingest.standin.Fault`)."""

    KINDS: ClassVar[tuple[str, ...]] = FAULT_KINDS
    API: ClassVar[str] = "orders API"


class FaultPlan(standin.FaultPlan[Fault]):
    """The queue of faults that the next requests to /v1/orders meet."""

    fault_type = Fault


class _BadRequest(Exception):
    def __init__(self, status: int, parameter: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.parameter = parameter


class _OrderIndex:
    """Where a page starts: binary search over the table's (updated_at, order_id) order."""

    def __init__(self, table: pa.Table) -> None:
        self.rows = table.num_rows
        self._updated_s = as_numpy(table.column("updated_at").cast(pa.int64())) // 1_000_000
        order_numbers = pc.utf8_slice_codeunits(table.column("order_id"), start=len("ORD-"))
        self._order_numbers = as_numpy(order_numbers.cast(pa.int64()))

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
    app = FastAPI(title="orders API", docs_url=None, redoc_url=None, openapi_url=None)
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

    standin.serve_faults(app, plan)
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


def serve_forever(host: str, port: int, orders: int, seed: int, fault_specs: Sequence[str] = ()) -> None:
    """Serve the orders API in the foreground until interrupted (``lakebox orders-api``)."""
    standin.serve_forever(create_app(orders, seed, FaultPlan.parse(fault_specs)), host, port,
                          f"{orders} orders, seed {seed}")
