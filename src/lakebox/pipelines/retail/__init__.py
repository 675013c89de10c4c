"""retail: daily CSV drops from 150 stores → raw lake → raw.retail_* → store analytics marts →
snapshots. See docs/retail.md."""

from __future__ import annotations

from lakebox.core_settings import GATE_POLICY
from lakebox.pipelines.spec import (
    SNAPSHOT,
    TRANSFORM,
    Command,
    DashboardPage,
    PipelineSpec,
    Setting,
    StageSpec,
)

SPEC = PipelineSpec(
    name="retail",
    description="daily CSV drops from 150 stores: store performance, promotions, stockouts",
    stages=(
        StageSpec("land", ".source:land_drops"),
        StageSpec("load", ".load:load_drops"),
        TRANSFORM,
        SNAPSHOT,
    ),
    settings=(
        Setting("policy", "quarantine", "`quarantine`: quarantine a bad file, load the good ones; `fail-fast`: stop "
                "at the first bad file and load nothing of its day", kind=GATE_POLICY),
    ),
    dbt_selector="path:models/retail",
    marts=(
        "analytics.store_daily_performance",
        "analytics.category_performance",
        "analytics.promotion_effectiveness",
        "analytics.stockout_impact",
        "analytics.weekday_vs_weekend",
        "analytics.store_insights",
    ),
    sources=("retail",),
    dashboard_page=DashboardPage(".page", "Retail", ":material/storefront:", default=True),
    commands=(Command("retail-generate", ".commands:retail_generate"),),
    demo_feed=".demo:generated_drop",
    waiting_input=".source:landing_fingerprint",  # file-fed: runs when $LAKEBOX_LANDING/retail changed
)
