"""orders' stages of its own: fetch API pages into the raw lake; load them into raw.orders
through its contract. The spec (`__init__.py`) puts transform and snapshot after them."""

from __future__ import annotations

from lakebox.ingest.batches import load_pending_batches
from lakebox.ingest.json_pages import PageReader
from lakebox.runner import RunContext, StageResult


def fetch(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.orders.source import fetch_orders

    return fetch_orders(ctx)


def load(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.orders.contract import CONTRACT

    return load_pending_batches(
        ctx, CONTRACT, PageReader("$.records"),
        hint="fix the source (or the contract in lakebox/pipelines/orders/contract.py if the change is "
        "intended); the original response is kept in quarantine/ and raw/",
    )
