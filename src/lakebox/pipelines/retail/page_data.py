"""The queries behind the Retail page (`page.py`), over retail's marts in `analytics`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lakebox.dashboard.data import WarehouseRef, fetch, in_filter

SEVERITY_ORDER = ("high", "medium", "low")


@dataclass(frozen=True)
class RetailFilter:
    """The Retail page's filters; `None` for stores or regions means all of them."""

    start: dt.date
    end: dt.date
    store_ids: tuple[Any, ...] | None = None
    regions: tuple[str, ...] | None = None

    def stores_sql(self) -> tuple[str, tuple[Any, ...]]:
        return in_filter("store_id", self.store_ids)

    def regions_sql(self) -> tuple[str, tuple[Any, ...]]:
        return in_filter("region", self.regions)


def retail_stores(wh: WarehouseRef) -> pd.DataFrame:
    return fetch(
        wh,
        "select store_id, max(store_name) as store_name, max(region) as region, max(format) as format "
        "from analytics.store_daily_performance group by store_id order by store_id",
    )


def retail_date_bounds(wh: WarehouseRef) -> tuple[dt.date, dt.date]:
    df = fetch(wh, "select min(date) as first_day, max(date) as last_day from analytics.store_daily_performance")
    return df["first_day"].iloc[0].date(), df["last_day"].iloc[0].date()


def retail_kpis(wh: WarehouseRef, f: RetailFilter) -> pd.Series:
    where, params = f.stores_sql()
    return fetch(
        wh,
        "select cast(coalesce(sum(total_sales), 0) as double precision) as total_sales, "
        "cast(coalesce(sum(transaction_count), 0) as bigint) as transactions, "
        "cast(sum(total_sales) / nullif(sum(transaction_count), 0) as double precision) as avg_basket, "
        "count(distinct store_id) as stores, count(distinct date) as days "
        f"from analytics.store_daily_performance where date between ? and ?{where}",
        (f.start, f.end, *params),
    ).iloc[0]


def retail_daily_sales(wh: WarehouseRef, f: RetailFilter) -> pd.DataFrame:
    where, params = f.stores_sql()
    return fetch(
        wh,
        "select date, region, cast(sum(total_sales) as double precision) as total_sales, "
        "cast(sum(transaction_count) as bigint) as transactions "
        f"from analytics.store_daily_performance where date between ? and ?{where} "
        "group by date, region order by date, region",
        (f.start, f.end, *params),
    )


def retail_category_mix(wh: WarehouseRef, f: RetailFilter) -> pd.DataFrame:
    """Monthly sales by category for the filtered regions (the mart is region-level)."""
    where, params = f.regions_sql()
    return fetch(
        wh,
        "select month, category, cast(sum(total_sales) as double precision) as total_sales "
        f"from analytics.category_performance where month between ? and ?{where} "
        "group by month, category order by month, category",
        (f.start.replace(day=1), f.end, *params),
    )


def retail_promotions(wh: WarehouseRef, f: RetailFilter) -> pd.DataFrame:
    """Promotions that overlap the date range, best lift first."""
    where, params = f.stores_sql()
    return fetch(
        wh,
        "select promo_id, store_id, category, start_date, end_date, "
        "cast(discount_pct as double precision) as discount_pct, promo_days, "
        "cast(avg_daily_sales_promo as double precision) as avg_daily_sales_promo, "
        "cast(avg_daily_sales_baseline as double precision) as avg_daily_sales_baseline, "
        "cast(lift_pct as double precision) as lift_pct "
        f"from analytics.promotion_effectiveness where start_date <= ? and end_date >= ?{where} "
        "order by lift_pct desc nulls last, promo_id",
        (f.end, f.start, *params),
    )


def retail_stockouts(wh: WarehouseRef, f: RetailFilter) -> pd.DataFrame:
    where, params = f.stores_sql()
    return fetch(
        wh,
        "select store_id, store_name, region, category, stockout_days, "
        "cast(estimated_lost_sales as double precision) as estimated_lost_sales "
        f"from analytics.stockout_impact where 1 = 1{where} "
        "order by estimated_lost_sales desc, store_id, category",
        params,
    )


def retail_weekend(wh: WarehouseRef, f: RetailFilter) -> pd.DataFrame:
    where, params = f.stores_sql()
    return fetch(
        wh,
        "select store_id, store_name, region, format, "
        "cast(avg_weekday_sales as double precision) as avg_weekday_sales, "
        "cast(avg_weekend_sales as double precision) as avg_weekend_sales, "
        "cast(weekend_uplift_pct as double precision) as weekend_uplift_pct "
        f"from analytics.weekday_vs_weekend where 1 = 1{where} order by weekend_uplift_pct desc, store_id",
        params,
    )


def retail_insights(wh: WarehouseRef, f: RetailFilter) -> pd.DataFrame:
    where, params = f.stores_sql()
    return fetch(
        wh,
        "select severity, store_id, store_name, region, insight_type, "
        "cast(metric_value as double precision) as metric_value, insight "
        f"from analytics.store_insights where 1 = 1{where} "
        "order by case severity when 'high' then 0 when 'medium' then 1 else 2 end, store_id, insight_type",
        params,
    )
