"""orders' fetch: the declared REST source (pipeline.toml) against the orders API, or,
when LAKEBOX_ORDERS_API_URL is unset, against the bundled synthetic API started in-process
for the run, so the pipeline runs offline.

What pipeline.toml cannot say is set here: the page size from the page_size setting, an
optional bearer token (no LAKEBOX_ORDERS_API_TOKEN, no header: the bundled API asks for
none), and the cursor kept as `watermark`, moved with each page, as the API sends the
oldest first (a crash part-way resumes after the last page landed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.declarative.config import PipelineConfig
    from lakebox.ingest.rest import RestSource
    from lakebox.quality.contract import Contract
    from lakebox.runner import RunContext, StageResult

SOURCE = "orders"
WATERMARK = "watermark"  # the cursor's key in ops.source_state
TOKEN = "LAKEBOX_ORDERS_API_TOKEN"


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


def fetch(ctx: RunContext, config: PipelineConfig) -> StageResult:
    """Land every new or updated order page since the watermark."""
    from lakebox.declarative.rest import fetch as fetch_rest

    page_size = ctx.settings.pipeline(SOURCE).integer("page_size")
    return fetch_rest(ctx, config, base=orders_api, tune=lambda source: _tuned(source, page_size))


def _tuned(source: RestSource, page_size: int) -> RestSource:
    from lakebox.ingest.rest import Auth

    inc = source.incremental
    return dataclasses.replace(
        source, params={**source.params, "limit": page_size}, auth=Auth(TOKEN),
        incremental=dataclasses.replace(inc, state_key=WATERMARK, newest_first=False) if inc else None)


def contract() -> Contract:
    """raw.orders' contract, as pipeline.toml declares it (for the bench and the tests)."""
    from lakebox.declarative.config import load_config
    from lakebox.declarative.load import contract_for

    config = load_config(Path(__file__).parent)
    return contract_for(config, config.source.resources[0])
