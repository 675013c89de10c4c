"""orders: declared in pipeline.toml (the orders API -> raw.orders) and models/ (stg_orders,
daily_order_metrics); the Python here is only its offline stand-in (the synthetic API, the
demo feed, the in-process fallback of fetch.py), its page and its command. See docs/orders.md."""

from __future__ import annotations

from pathlib import Path

from lakebox.core_settings import GATE_POLICY
from lakebox.declarative.spec import spec_from_folder
from lakebox.pipelines.spec import Command, DashboardPage, Setting
from lakebox.setting_kinds import Url, Whole

SPEC = spec_from_folder(
    Path(__file__).parent,
    fetch="lakebox.pipelines.orders.fetch",
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
    dashboard_page=DashboardPage(".page", "Orders", ":material/receipt_long:"),
    commands=(Command("orders-api", ".commands:orders_api"),),
    demo_feed=".demo:bundled_api",
)
