"""retail: landing files → raw lake → raw.retail_* → staging → store analytics marts → snapshots."""

from __future__ import annotations

from lakebox.lake.snapshots import snapshot_stage
from lakebox.runner import Pipeline, RunContext, Stage, StageResult
from lakebox.settings import Settings
from lakebox.transform import transform_stage

MARTS = (
    "analytics.store_daily_performance",
    "analytics.category_performance",
    "analytics.promotion_effectiveness",
    "analytics.stockout_impact",
    "analytics.weekday_vs_weekend",
    "analytics.store_insights",
)


def waiting_files(settings: Settings) -> object:
    from lakebox.pipelines.retail.source import landing_fingerprint

    return landing_fingerprint(settings)


def land(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.retail.source import land_drops

    return land_drops(ctx)


def load(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.retail.load import load_drops

    return load_drops(ctx)


PIPELINE = Pipeline(
    name="retail",
    description="daily CSV drops from 150 stores: store performance, promotions, stockouts",
    stages=(
        Stage("land", land),
        Stage("load", load),
        transform_stage("path:models/retail", ["retail"], MARTS),
        snapshot_stage(MARTS),
    ),
    waiting_input=waiting_files,
)

# Landing and gating only, for checking drops without rebuilding marts (and for tests).
INGEST_ONLY = Pipeline(name="retail", description="retail landing and quality gate", stages=PIPELINE.stages[:2])
