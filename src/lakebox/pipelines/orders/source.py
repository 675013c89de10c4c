"""The orders source connector: page through the API and land each response as received.

Incremental by a watermark (the newest `updated_at` landed) kept in ops.source_state.
The watermark moves in the same transaction that records a landed page in the ledger,
so a crash after landing loses nothing (the page is pending and loads next run) and
never fetches a page twice into two batches.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from lakebox.errors import SourceFailedError
from lakebox.ingest.http import RetryPolicy, get_with_retry
from lakebox.log import progress
from lakebox.runner import RunContext, StageResult
from lakebox.settings import redact
from lakebox.warehouse import ops

SOURCE = "orders"
WATERMARK = "watermark"
PAGE_SIZE = 10_000
# Resume this far before the watermark, so an order updated in the watermark's last moment
# but delivered later is not missed; versions already loaded are skipped at load.
OVERLAP = dt.timedelta(seconds=1)
DEMO_ORDERS = 5_000
DEMO_SEED = 42


@contextmanager
def orders_api(ctx: RunContext) -> Iterator[str]:
    """The configured API URL, or the bundled API started in-process on a free port."""
    if ctx.settings.orders_api_url:
        yield ctx.settings.orders_api_url.rstrip("/")
        return
    from lakebox.pipelines.orders.api import create_app, serve_in_thread

    count = int(ctx.settings.env.get("LAKEBOX_DEMO_ORDERS", DEMO_ORDERS))
    with serve_in_thread(create_app(orders=count, seed=DEMO_SEED)) as server:
        ctx.log.info("bundled orders API started", url=server.url, orders=count)
        yield server.url


def fetch_orders(ctx: RunContext) -> StageResult:
    """Land every new or updated order page since the watermark."""
    import httpx

    wh, lake = ctx.warehouse, ctx.lake
    policy = RetryPolicy.from_env(ctx.settings.env)
    page_size = int(ctx.settings.env.get("LAKEBOX_ORDERS_PAGE_SIZE", PAGE_SIZE))
    watermark = ops.get_state(wh, SOURCE, WATERMARK)
    params: dict[str, Any] = {"limit": page_size}
    meta: dict[str, Any] = {}
    if watermark:
        params["updated_since"] = _iso(dt.datetime.fromisoformat(watermark) - OVERLAP)
        meta["overlap"] = [params["updated_since"], watermark]
    rows = pages = malformed = 0
    with orders_api(ctx) as base_url, httpx.Client(headers=_auth_headers()) as client, \
            progress("fetching orders") as bar:
        url = f"{base_url}/v1/orders"
        ctx.log.info("fetching orders", url=redact(url), updated_since=watermark)
        while True:
            body = get_with_retry(client, url, params, SOURCE, policy).content
            manifest = lake.land_batch(SOURCE, body, "json", meta={**meta, "request": dict(params)})
            try:
                doc = orjson.loads(body)
                records, cursor = doc["records"], doc.get("next_cursor")
                if not isinstance(records, list):
                    raise TypeError("'records' is not a list")
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                malformed += 1
                _quarantine_unreadable(ctx, manifest, f"response is not a valid orders page: {exc}")
                if malformed >= policy.max_attempts:
                    raise SourceFailedError(
                        f"source {SOURCE}: {redact(url)} sent {malformed} unreadable responses in a row; "
                        "they are quarantined in the lake"
                    ) from exc
                continue  # ask again for the same page
            malformed = 0
            pages += 1
            rows += len(records)
            bar.advance(len(records))
            if records or cursor:
                with wh.transaction():
                    ops.record_landed(wh, _with_rows(manifest, len(records)), ctx.run_id)
                    newest = _newest_updated_at(records)
                    if newest and (watermark is None or newest > watermark):
                        watermark = newest
                        ops.set_state(wh, SOURCE, WATERMARK, watermark)
            if not cursor:
                break
            params = {"limit": page_size, "cursor": cursor}
    ctx.log.info("orders fetched", pages=pages, records=rows, watermark=watermark)
    return StageResult(rows_in=rows, rows_out=rows)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _auth_headers() -> dict[str, str]:
    token = os.environ.get("LAKEBOX_ORDERS_API_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _newest_updated_at(records: list[Any]) -> str | None:
    stamps = [r.get("updated_at") for r in records if isinstance(r, dict)]
    stamps = [s for s in stamps if isinstance(s, str)]
    return max(stamps) if stamps else None


def _with_rows(manifest: Any, rows: int) -> Any:
    from dataclasses import replace

    return replace(manifest, rows=rows)


def _quarantine_unreadable(ctx: RunContext, manifest: Any, reason: str) -> None:
    from lakebox.quality.gate import CheckResult, quarantine

    result = CheckResult("parse", None, False, 0, [], reason)
    wh = ctx.warehouse
    with wh.transaction():
        if not ops.record_landed(wh, manifest, ctx.run_id):
            return  # the same bytes were judged before
        ops.record_dq_results(wh, ctx.run_id, manifest.batch_id, SOURCE, [result])
        quarantine(ctx, source=SOURCE, batch_id=manifest.batch_id, lake_key=manifest.key, results=[result],
                   hint="the API sent a response that is not a valid orders page; the same request was sent "
                   "again, and once it loads this item is resolved. Inspect the item if it stays open")
