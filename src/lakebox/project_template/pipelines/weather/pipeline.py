"""weather's own stages: fetch the API's pages into the raw lake; load them through the gate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from lakebox.ingest.batches import load_pending_batches
from lakebox.ingest.json_pages import PageReader
from lakebox.ingest.rest import CursorInBody, Incremental, RestSource
from lakebox.runner import RunContext, StageResult


@contextmanager
def api(ctx: RunContext) -> Iterator[str]:
    """The configured API, else the sample readings served on 127.0.0.1 for this run."""
    configured = ctx.settings.pipeline("weather")["api_url"]
    if configured:
        yield configured
        return
    from .standin import serve_sample

    with serve_sample() as url:
        yield url


SOURCE = RestSource(
    source="weather",
    base_url=api,
    path="/v1/readings",
    records="$.records",
    pagination=CursorInBody("next_cursor", "cursor"),
    incremental=Incremental("measured_at", "since", overlap=dt.timedelta(seconds=1)),
)


def fetch(ctx: RunContext) -> StageResult:
    return SOURCE.fetch(ctx)


def load(ctx: RunContext) -> StageResult:
    from .contract import CONTRACT

    return load_pending_batches(ctx, CONTRACT, PageReader("$.records"),
                                hint="fix the source, or contract.py if the change is intended")
