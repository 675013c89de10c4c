"""retail: landing files → raw lake → raw.retail_* → staging → store analytics marts → snapshots."""

from __future__ import annotations

from lakebox.runner import Pipeline, RunContext, Stage, StageResult

MARTS = (
    "analytics.store_daily_performance",
    "analytics.category_performance",
    "analytics.promotion_effectiveness",
    "analytics.stockout_impact",
    "analytics.weekday_vs_weekend",
    "analytics.store_insights",
)


def land(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.retail.source import land_drops

    return land_drops(ctx)


def load(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.retail.load import load_drops

    return load_drops(ctx)


def transform(ctx: RunContext) -> StageResult:
    from lakebox.transform import build_marts

    return build_marts(ctx, "path:models/retail", ["retail"], MARTS)


def snapshot(ctx: RunContext) -> StageResult:
    from lakebox.lake.snapshots import snapshot_marts

    rows = snapshot_marts(ctx, MARTS)
    return StageResult(rows_in=rows, rows_out=rows)


PIPELINE = Pipeline(
    name="retail",
    description="daily CSV drops from 150 stores: store performance, promotions, stockouts",
    stages=(Stage("land", land), Stage("load", load), Stage("transform", transform), Stage("snapshot", snapshot)),
)

# Landing and gating only, for checking drops without rebuilding marts (and for tests).
INGEST_ONLY = Pipeline(name="retail", description="retail landing and quality gate", stages=PIPELINE.stages[:2])
