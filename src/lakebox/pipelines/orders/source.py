"""The orders source: the orders API as a configuration of the shared REST source.

Pages by the cursor in each page's body, incremental by the newest `updated_at` landed
(`watermark` in ops.source_state) with a one-second overlap; versions sent twice are
skipped at load by the contract's version_key. Without LAKEBOX_ORDERS_API_URL the bundled
API is started in-process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from lakebox.ingest.rest import Auth, CursorInBody, Incremental, RestSource
from lakebox.runner import RunContext, StageResult

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


def orders_source(page_size: int) -> RestSource:
    return RestSource(
        source=SOURCE,
        base_url=orders_api,
        path="/v1/orders",
        records="$.records",
        # the cursor alone resumes strictly after the last record sent
        pagination=CursorInBody("next_cursor", "cursor", size_param="limit", size=page_size, resend_params=False),
        incremental=Incremental("updated_at", "updated_since", overlap=OVERLAP, state_key=WATERMARK),
        auth=Auth("LAKEBOX_ORDERS_API_TOKEN"),
        unreadable_hint="the API sent a response that is not JSON; it was retried. Inspect the item, "
        "and if the source recovers nothing is lost",
    )


def fetch_orders(ctx: RunContext) -> StageResult:
    """Land every new or updated order page since the watermark."""
    return orders_source(ctx.settings.pipeline(SOURCE).integer("page_size")).fetch(ctx)
