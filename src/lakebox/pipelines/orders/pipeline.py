"""orders: API → raw lake → raw.orders → stg_orders → daily_order_metrics → snapshot."""

from __future__ import annotations

from lakebox.ingest.batches import load_pending_batches
from lakebox.runner import Pipeline, RunContext, Stage, StageResult
from lakebox.transform import build_marts

MARTS = ("analytics.daily_order_metrics",)
MAX_PAGE_BYTES = 64 << 20  # DuckDB buffers twice this; a 10k-record page is ~2 MB


def parse_page_sql(uri: str) -> str:
    """One API page as rows; fields are inferred so drift shows up as drift."""
    return (
        f"select unnest(records, recursive := true) from read_json('{uri}', "
        f"format = 'auto', maximum_object_size = {MAX_PAGE_BYTES})"
    )


def fetch(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.orders.source import fetch_orders

    return fetch_orders(ctx)


def load(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.orders.contract import CONTRACT

    return load_pending_batches(
        ctx, CONTRACT, parse_page_sql,
        hint="fix the source (or the contract in lakebox/pipelines/orders/contract.py if the change is "
        "intended); the original response is kept in quarantine/ and raw/",
    )


def transform(ctx: RunContext) -> StageResult:
    return build_marts(ctx, "path:models/orders", ["orders"], MARTS)


def snapshot(ctx: RunContext) -> StageResult:
    from lakebox.lake.snapshots import snapshot_marts

    rows = snapshot_marts(ctx, MARTS)
    return StageResult(rows_in=rows, rows_out=rows)


PIPELINE = Pipeline(
    name="orders",
    description="synthetic orders API: daily order metrics, quality gate, snapshots",
    stages=(Stage("fetch", fetch), Stage("load", load), Stage("transform", transform), Stage("snapshot", snapshot)),
)
