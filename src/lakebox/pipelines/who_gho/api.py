"""The WHO GHO OData API stand-in (`lakebox who-api`), with the faults a real source throws.

    GET /{IndicatorCode}?$top=N&$skip=N&$count=true&$filter=...
        200 {"@odata.context": "https://ghoapi.azureedge.net/api/$metadata#<code>", ["@odata.count": N,] "value": [...],
             ["@odata.nextLink": ".../<code>?$skip=..."]}
        Records ordered by Id. Like the real service it sends the whole indicator unless
        asked for less; with `page_size` (server-driven paging, `--page-size`) it sends at
        most that many and an `@odata.nextLink` to the rest. `$filter` takes clauses joined
        by ` and `: `TimeDim`, `Date`, `SpatialDim`, `Dim1` with eq, ne, gt, ge, lt, le, e.g.
        `Date gt 2024-08-01T00:00:00Z` (a datetime is unquoted, a string in single quotes).
    GET /DIMENSION/COUNTRY/DimensionValues   the country dimension (Code, Title, ParentCode, ...)
    GET /Indicator                           the indicators served
    GET|POST|DELETE /_faults                 list, add ({"kind", "count", ...}), clear

An unknown indicator is a 404 with OData's error body, as the real service (ASP.NET OData)
answers a path that names no entity set:
`{"error": {"code": "", "message": "No HTTP resource was found that matches the request URI '...'"}}`;
a bad query option is a 400 with the same shape.

Faults reuse the orders stand-in's fault queue (`lakebox.pipelines.orders.api.Fault`), on
indicator requests only: `429`, `500`, `slow`, `malformed` as there; the data faults spoil
about one record in ten the GHO way: `rename_field` (NumericValue sent as Numeric_Value),
`missing_field` (no SpatialDim), `null_ids` (NumericValue null with no Value or Comments to
say why), `negative_amount` (NumericValue below 0), `duplicate_ids` (a record sent twice),
`unknown_status` (Dim1 = SEX_UNK).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import operator
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lakebox.errors import ConfigError
from lakebox.pipelines.orders.api import (
    Fault,
    FaultPlan,
    RunningServer,
    serve_in_thread,
)
from lakebox.pipelines.who_gho.generator import INDICATORS, GhoData, generate_gho

# The real service's root in `@odata.context`, wherever the stand-in listens: the same data
# is the same bytes (the same batch) from a stand-in restarted on another port.
CONTEXT_ROOT: Final = "https://ghoapi.azureedge.net/api"
_CLAUSE: Final = re.compile(r"^\s*(TimeDim|Date|SpatialDim|Dim1)\s+(eq|ne|gt|ge|lt|le)\s+(.+?)\s*$")
_COMPARE: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le,
}


class _BadQuery(Exception):
    pass


def _odata_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "", "message": message}}, status_code=status)


def _non_negative(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise _BadQuery(f"Invalid value '{raw}' for {name} query option: a non-negative integer is expected.")
    return int(raw)


def _filter(records: list[dict[str, Any]], expression: str | None) -> list[dict[str, Any]]:
    if not expression:
        return records
    tests = []
    for clause in re.split(r"\s+and\s+", expression.strip()):
        match = _CLAUSE.match(clause)
        if not match:
            raise _BadQuery(f"The query specified in the URI is not valid: unsupported $filter clause '{clause}'; "
                            "this stand-in supports TimeDim, Date, SpatialDim, Dim1 with eq, ne, gt, ge, lt, le.")
        field, op, literal = match.groups()
        tests.append((field, _COMPARE[op], _literal(field, literal)))

    def keep(record: dict[str, Any]) -> bool:
        for field, compare, wanted in tests:
            value = record[field]
            if field == "Date":
                value = dt.datetime.fromisoformat(value)
            if value is None or not compare(value, wanted):
                return False
        return True

    return [r for r in records if keep(r)]


def _literal(field: str, text: str) -> Any:
    try:
        if field == "TimeDim":
            return int(text)
        if field == "Date":
            moment = dt.datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except ValueError:
        raise _BadQuery(f"The query specified in the URI is not valid: '{text}' is not a valid {field}.") from None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    raise _BadQuery(f"The query specified in the URI is not valid: {field} takes a quoted string, got {text}.")


def create_app(
    countries: int = 190, years: int = 20, seed: int = 0, revision: int = 0,
    faults: FaultPlan | None = None, page_size: int | None = None, data: GhoData | None = None,
) -> FastAPI:
    """The stand-in over `generate_gho(...)` (or `data`); `app.state.faults` is its fault plan."""
    gho = data if data is not None else generate_gho(countries, years, seed, revision)
    plan = faults if faults is not None else FaultPlan()
    app = FastAPI(title="lakebox WHO GHO stand-in", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.faults = plan
    app.state.data = gho

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.get("/DIMENSION/COUNTRY/DimensionValues")
    async def country_dimension(request: Request) -> Response:
        body = {"@odata.context": f"{CONTEXT_ROOT}/$metadata#Collection(Default.DIMENSION_VALUE)",
                "value": gho.countries}
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/Indicator")
    async def indicators(request: Request) -> Response:
        value = [{"IndicatorCode": code, "IndicatorName": name, "Language": "EN"}
                 for code, name in INDICATORS.items() if code in gho.observations]
        return Response(orjson.dumps({"@odata.context": f"{CONTEXT_ROOT}/$metadata#Indicator", "value": value}),
                        media_type="application/json")

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

    @app.get("/{indicator}")
    async def observations(indicator: str, request: Request) -> Response:
        records = gho.observations.get(indicator)
        if records is None:
            return _odata_error(404, f"No HTTP resource was found that matches the request URI '{request.url}'.")
        fault = plan.take()
        if fault is not None and fault.kind == "429":
            return JSONResponse({"error": {"code": "429", "message": "Rate limit is exceeded (injected fault)."}},
                                status_code=429, headers={"Retry-After": str(fault.retry_after)})
        if fault is not None and fault.kind == "500":
            return _odata_error(500, "An error has occurred (injected fault).")
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        query = request.query_params
        try:
            top, skip = _non_negative(query, "$top"), _non_negative(query, "$skip") or 0
            matching = _filter(records, query.get("$filter"))
        except _BadQuery as exc:
            return _odata_error(400, str(exc))
        wanted = len(matching) - skip if top is None else top
        size = wanted if page_size is None else min(wanted, page_size)
        page = matching[skip:skip + max(size, 0)]
        body: dict[str, Any] = {"@odata.context": f"{CONTEXT_ROOT}/$metadata#{indicator}"}
        if query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(matching)
        body["value"] = page
        if len(page) < wanted and skip + len(page) < len(matching):
            rest = {k: v for k, v in query.items() if k not in ("$skip", "$top")}
            rest["$skip"] = str(skip + len(page))
            if top is not None:
                rest["$top"] = str(top - len(page))
            body["@odata.nextLink"] = f"{base(request)}/{indicator}?{urlencode(rest)}"
        data_bytes = orjson.dumps(body)
        if fault is not None and fault.kind != "slow":
            data_bytes = _spoil(data_bytes, fault.kind)
        return Response(data_bytes, media_type="application/json")

    return app


def _spoil(body: bytes, kind: str) -> bytes:
    """The page with a data fault applied to about one record in ten (at least one)."""
    if kind == "malformed":
        return body[: len(body) // 2]
    page = orjson.loads(body)
    records: list[dict[str, Any]] = page["value"]
    hit = range(0, len(records), 10)
    if kind == "rename_field":
        page["value"] = [{("Numeric_Value" if k == "NumericValue" else k): v for k, v in r.items()} for r in records]
    elif kind == "missing_field":
        for record in records:
            del record["SpatialDim"]
    elif kind == "null_ids":
        for i in hit:
            records[i].update(NumericValue=None, Value=None, Comments=None, Low=None, High=None)
    elif kind == "negative_amount":
        for i in hit:
            records[i]["NumericValue"] = -abs(records[i]["NumericValue"] or 1.0)
    elif kind == "unknown_status":
        for i in hit:
            records[i]["Dim1"] = "SEX_UNK"
    elif kind == "duplicate_ids":
        for i in reversed(hit):
            records.insert(i + 1, dict(records[i]))
    return orjson.dumps(page)


def serve(
    host: str = "127.0.0.1", port: int = 0, countries: int = 190, years: int = 20, seed: int = 0,
    revision: int = 0, fault_specs: Sequence[str] = (), page_size: int | None = None,
) -> RunningServer:
    """The stand-in on a background thread (port 0: any free port); use as a context manager."""
    app = create_app(countries, years, seed, revision, FaultPlan.parse(fault_specs), page_size)
    return serve_in_thread(app, host, port)


def main(argv: Sequence[str] | None = None) -> int:
    """`lakebox who-api`: serve the stand-in in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="lakebox who-api", description="WHO GHO OData API stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--countries", type=int, default=190)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--revise", type=int, default=0, help="revision round: re-publish ~3%% of values")
    parser.add_argument("--page-size", type=int, default=None, help="server-driven paging with @odata.nextLink")
    parser.add_argument("--fault", action="append", default=[], help="kind[:count][:key=value...], repeatable")
    args = parser.parse_args(argv)
    try:
        server = serve(args.host, args.port, args.countries, args.years, args.seed, args.revise, args.fault,
                       args.page_size)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"WHO GHO stand-in on {server.url} ({args.countries} countries, {args.years} years, seed {args.seed}, "
          f"revision {args.revise})", file=sys.stderr, flush=True)
    with server:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
