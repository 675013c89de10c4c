"""orders: API → raw lake → raw.orders → stg_orders → daily_order_metrics → snapshot."""

from __future__ import annotations

from lakebox.ingest.batches import load_pending_batches
from lakebox.ingest.json_pages import PageReader
from lakebox.lake.snapshots import snapshot_stage
from lakebox.runner import Pipeline, RunContext, Stage, StageResult
from lakebox.transform import transform_stage

MARTS = ("analytics.daily_order_metrics",)


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


PIPELINE = Pipeline(
    name="orders",
    description="synthetic orders API: daily order metrics, quality gate, snapshots",
    stages=(
        Stage("fetch", fetch),
        Stage("load", load),
        transform_stage("path:models/orders", ["orders"], MARTS),
        snapshot_stage(MARTS),
    ),
)
