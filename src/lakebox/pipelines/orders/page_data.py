"""The queries behind the Orders page (`page.py`), over `analytics.daily_order_metrics`."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from lakebox.dashboard.data import WarehouseRef, fetch


def orders_date_bounds(wh: WarehouseRef) -> tuple[dt.date, dt.date]:
    df = fetch(wh, "select min(order_date) as first_day, max(order_date) as last_day from analytics.daily_order_metrics")
    return df["first_day"].iloc[0].date(), df["last_day"].iloc[0].date()


def orders_daily(wh: WarehouseRef, start: dt.date, end: dt.date) -> pd.DataFrame:
    return fetch(
        wh,
        "select order_date, total_orders, cast(total_amount as double precision) as total_amount, "
        "cast(avg_amount as double precision) as avg_amount, unique_customers, cancelled_orders, "
        "cast(refunded_amount as double precision) as refunded_amount, _last_ingested_at "
        "from analytics.daily_order_metrics where order_date between ? and ? order by order_date",
        (start, end),
    )
