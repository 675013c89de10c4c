"""orders: a synthetic orders REST API that lakebox serves itself → raw lake → raw.orders →
stg_orders → daily_order_metrics → snapshot. See docs/orders.md."""

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
from lakebox.setting_kinds import Url, Whole

SPEC = PipelineSpec(
    name="orders",
    description="synthetic orders API: daily order metrics, quality gate, snapshots",
    stages=(
        StageSpec("fetch", ".pipeline:fetch"),
        StageSpec("load", ".pipeline:load"),
        TRANSFORM,
        SNAPSHOT,
    ),
    settings=(
        Setting("api_url", None, "the orders API's base URL; unset: the bundled synthetic API, started in-process",
                kind=Url()),
        Setting("api_token", None, "bearer token sent to the API (environment only)", secret=True),
        Setting("page_size", "10000", "records asked for per page (the API's `limit`)", kind=Whole(1)),
        Setting("demo_orders", "5000", "orders the bundled API serves (seed 42), in `lakebox demo` and when "
                "api_url is unset", env="LAKEBOX_DEMO_ORDERS", kind=Whole(0)),
        Setting("policy", "quarantine", "`quarantine`: quarantine a page that fails its gate, load the good ones; "
                "`fail-fast`: stop at the first bad page and leave the rest pending", kind=GATE_POLICY),
    ),
    dbt_selector="path:models/orders",
    marts=("analytics.daily_order_metrics",),
    sources=("orders",),
    dashboard_page=DashboardPage(".page", "Orders", ":material/receipt_long:"),
    commands=(Command("orders-api", ".commands:orders_api"),),
    demo_feed=".demo:bundled_api",
    waiting_input=None,  # polled: `lakebox watch` runs it every --every seconds
)
