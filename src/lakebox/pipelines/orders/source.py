"""The orders source connector: page through the API and land each response as received.

Incremental by a watermark (the newest `updated_at` landed) kept in ops.source_state.
The watermark moves in the same transaction that records a landed page in the ledger,
so a crash after landing loses nothing (the page is pending and loads next run) and
never fetches a page twice into two batches.
"""

from __future__ import annotations

import datetime as dt
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
# Resume this far before the watermark, so an order updated in the watermark's last moment
# but delivered later is not missed; versions already loaded are skipped at load.
OVERLAP = dt.timedelta(seconds=1)


@contextmanager
def orders_api(ctx: RunContext) -> Iterator[str]:
    """The configured API URL, or the bundled API started in-process on a free port."""
    configured = ctx.settings.pipeline(SOURCE)["api_url"]
    if configured:
        yield configured.rstrip("/")
        return
    from lakebox.pipelines.orders.demo import bundled_api

    with bundled_api(ctx.settings) as bundled:
        ctx.log.info("bundled orders API started", url=bundled.settings["api_url"])
        yield bundled.settings["api_url"]


def fetch_orders(ctx: RunContext) -> StageResult:
    """Land every new or updated order page since the watermark."""
    import httpx

    wh, lake = ctx.warehouse, ctx.lake
    policy = RetryPolicy.from_env(ctx.settings.env)
    page_size = ctx.settings.pipeline(SOURCE).integer("page_size")
    watermark = ops.get_state(wh, SOURCE, WATERMARK)
    params: dict[str, Any] = {"limit": page_size}
    meta: dict[str, Any] = {}
    if watermark:
        params["updated_since"] = _iso(dt.datetime.fromisoformat(watermark) - OVERLAP)
        meta["overlap"] = [params["updated_since"], watermark]
    rows = pages = malformed = 0
    with orders_api(ctx) as base_url, httpx.Client(headers=_auth_headers(ctx)) as client, \
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


def _auth_headers(ctx: RunContext) -> dict[str, str]:
    token = ctx.settings.pipeline(SOURCE)["api_token"]
    return {"Authorization": f"Bearer {token}"} if token else {}


def _newest_updated_at(records: list[Any]) -> str | None:
    stamps = [r.get("updated_at") for r in records if isinstance(r, dict)]
    stamps = [s for s in stamps if isinstance(s, str)]
    return max(stamps) if stamps else None


def _with_rows(manifest: Any, rows: int) -> Any:
    from dataclasses import replace

    return replace(manifest, rows=rows)


def _quarantine_unreadable(ctx: RunContext, manifest: Any, reason: str) -> None:
    from lakebox.ingest.batches import describe_failure, errors_document
    from lakebox.warehouse.ops import CheckResult

    result = CheckResult("parse", None, False, 0, [], reason)
    doc = errors_document(SOURCE, manifest.batch_id, manifest.key, [result],
                          "the API sent a response that is not JSON; it was retried. Inspect the item, "
                          "and if the source recovers nothing is lost")
    item = manifest.key.rsplit("/", 1)[-1]
    ctx.lake.quarantine(SOURCE, item, ctx.lake.read_bytes(manifest.key), doc)
    wh = ctx.warehouse
    if ops.record_landed(wh, manifest, ctx.run_id):
        ops.mark_batch(wh, manifest.batch_id, ops.QUARANTINED, error=reason)
    ops.record_dq_results(wh, ctx.run_id, manifest.batch_id, SOURCE, [result])
    ctx.log.error("unreadable response quarantined", batch_id=manifest.batch_id, reason=reason)
    ctx.quarantine_failure(describe_failure(SOURCE, manifest.batch_id, result))
