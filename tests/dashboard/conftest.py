"""A real DuckDB warehouse with the retail and orders marts and the ops audit tables.

The marts are written with SQL from a few rules simple enough that the tests compute the
expected figures independently, in Python:
- four stores (two per region); on every day of Jan–Feb 2026 store n sells n * 1000,
  plus 500 on weekends, in n * 100 transactions;
- orders: day i of 1–10 Jan 2026 has 10 + i orders of 50.00 each, one of them cancelled.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

if TYPE_CHECKING:
    from lakebox.settings import Settings

STORES = {  # store_id: (store_name, region, format, n)
    "S001": ("Alpha Central", "North", "hyper", 1),
    "S002": ("Beta Corner", "North", "convenience", 2),
    "S003": ("Gamma Mall", "South", "hyper", 3),
    "S004": ("Delta Express", "South", "convenience", 4),
}
FIRST_DAY, LAST_DAY = dt.date(2026, 1, 1), dt.date(2026, 2, 28)
ORDER_DAYS = [dt.date(2026, 1, d) for d in range(1, 11)]

_RETAIL_SQL = [
    "create table analytics.store_daily_performance as "
    "with stores(store_id, store_name, region, format, n) as (values "
    + ", ".join(f"('{k}', '{v[0]}', '{v[1]}', '{v[2]}', {v[3]})" for k, v in STORES.items())
    + "), days as (select cast(d as date) as date, isodow(d) >= 6 as is_weekend "
    "from range(date '2026-01-01', date '2026-03-01', interval 1 day) as t(d)) "
    "select date, store_id, store_name, region, format, "
    "cast(n * 1000 + case when is_weekend then 500 else 0 end as decimal(18, 2)) as total_sales, "
    "n * 100 as transaction_count, "
    "cast((n * 1000 + case when is_weekend then 500 else 0 end) / (n * 100.0) as decimal(18, 2)) as avg_basket, "
    "case when store_id = 'S004' and day(date) % 10 = 0 then 1 else 0 end as stockout_categories, "
    "case when store_id = 'S001' and date between date '2026-01-05' and date '2026-01-11' then 1 else 0 end "
    "as promo_categories, is_weekend "
    "from days cross join stores",
    "create table analytics.category_performance as "
    "select cast(month as date) as month, region, category, cast(total_sales as decimal(18, 2)) as total_sales, "
    "transaction_count, share_of_region_sales from (values "
    "('2026-01-01', 'North', 'grocery', 60000, 5000, 0.6), ('2026-01-01', 'North', 'beverages', 40000, 4000, 0.4), "
    "('2026-01-01', 'South', 'grocery', 150000, 9000, 0.7), ('2026-01-01', 'South', 'household', 65000, 3000, 0.3), "
    "('2026-02-01', 'North', 'grocery', 55000, 4600, 0.6), ('2026-02-01', 'North', 'beverages', 36000, 3800, 0.4), "
    "('2026-02-01', 'South', 'grocery', 140000, 8800, 0.7), ('2026-02-01', 'South', 'household', 60000, 2900, 0.3)"
    ") as t(month, region, category, total_sales, transaction_count, share_of_region_sales)",
    "create table analytics.promotion_effectiveness as "
    "select promo_id, store_id, category, cast(start_date as date) as start_date, cast(end_date as date) as end_date, "
    "discount_pct, promo_days, avg_daily_sales_promo, avg_daily_sales_baseline, lift_pct from (values "
    "('P1', 'S001', 'beverages', '2026-01-05', '2026-01-11', 15.0, 7, 1250.0, 1000.0, 25.0), "
    "('P2', 'S003', 'grocery', '2026-02-01', '2026-02-07', 10.0, 7, 3300.0, 3000.0, 10.0), "
    "('P3', 'S002', 'household', '2026-01-20', '2026-01-26', 20.0, 7, 1900.0, 2000.0, -5.0)"
    ") as t(promo_id, store_id, category, start_date, end_date, discount_pct, promo_days, "
    "avg_daily_sales_promo, avg_daily_sales_baseline, lift_pct)",
    "create table analytics.stockout_impact as "
    "select store_id, store_name, region, category, stockout_days, "
    "cast(estimated_lost_sales as decimal(18, 2)) as estimated_lost_sales from (values "
    "('S004', 'Delta Express', 'South', 'grocery', 6, 1200.00), "
    "('S002', 'Beta Corner', 'North', 'beverages', 2, 300.00)"
    ") as t(store_id, store_name, region, category, stockout_days, estimated_lost_sales)",
    "create table analytics.weekday_vs_weekend as "
    "select store_id, store_name, region, format, cast(n * 1000 as double) as avg_weekday_sales, "
    "cast(n * 1000 + 500 as double) as avg_weekend_sales, round(500.0 / (n * 1000) * 100, 2) as weekend_uplift_pct "
    "from (values "
    + ", ".join(f"('{k}', '{v[0]}', '{v[1]}', '{v[2]}', {v[3]})" for k, v in STORES.items())
    + ") as t(store_id, store_name, region, format, n)",
    "create table analytics.store_insights as "
    "select store_id, store_name, region, insight_type, severity, metric_value, insight from (values "
    "('S004', 'Delta Express', 'South', 'stockout', 'high', 1200.0, 'Grocery ran out on 6 days: about 1,200 lost'), "
    "('S001', 'Alpha Central', 'North', 'promotion_lift', 'medium', 25.0, 'Beverage promotion lifted sales 25%'), "
    "('S003', 'Gamma Mall', 'South', 'weekend_uplift', 'low', 16.67, 'Weekends sell 17% more than weekdays')"
    ") as t(store_id, store_name, region, insight_type, severity, metric_value, insight)",
]

_ORDERS_SQL = (
    "create table analytics.daily_order_metrics as "
    "select cast(date '2026-01-01' + cast(i - 1 as integer) as date) as order_date, 10 + i as total_orders, "
    "cast((10 + i) * 50 as decimal(18, 2)) as total_amount, cast(50 as decimal(18, 2)) as avg_amount, "
    "8 + i as unique_customers, 1 as cancelled_orders, "
    "cast(case when i = 3 then 50 else 0 end as decimal(18, 2)) as refunded_amount, "
    "timestamp '2026-01-11 06:00:00' as _last_ingested_at "
    "from range(1, 11) as t(i)"
)

FAILED_RULES = [
    {"rule": "not_null", "column": "store_id", "failing_rows": 3, "detail": "store_id is empty", "sample": [{"row": 7}]},
    {"rule": "accepted_range", "column": "quantity", "failing_rows": 1, "detail": "quantity < 0", "sample": []},
]


def expected_sales(stores: list[str], start: dt.date, end: dt.date) -> tuple[float, int]:
    """(total sales, transactions) the mart rules give for these stores and days."""
    sales, transactions = 0.0, 0
    day = start
    while day <= end:
        for store in stores:
            n = STORES[store][3]
            sales += n * 1000 + (500 if day.weekday() >= 5 else 0)
            transactions += n * 100
        day += dt.timedelta(days=1)
    return sales, transactions


def _record_ops(settings: Settings, lake_url: str) -> None:
    from lakebox.lake import BatchManifest, Lake
    from lakebox.quality.gate import CheckResult
    from lakebox.warehouse import open_warehouse, ops

    lake = Lake(lake_url)
    with open_warehouse(settings) as wh:
        started = ops.utcnow() - dt.timedelta(minutes=5)
        ops.start_run(wh, "run-ok-1", "orders")
        ops.record_stage(wh, "run-ok-1", "orders", "ingest", "success", started, 10, 10, None)
        ops.record_stage(wh, "run-ok-1", "orders", "transform", "success", started, 10, 10, None)
        ops.end_run(wh, "run-ok-1", "success", started, 120, 120, None)
        ops.record_dq_results(wh, "run-ok-1", "batch-good", "orders", [
            CheckResult("not_null", "order_id", True, 0, []),
            CheckResult("unique", "order_id", True, 0, []),
        ])
        ops.start_run(wh, "run-bad-2", "retail")
        ops.end_run(wh, "run-bad-2", "failed", started, 40, 0,
                    "retail: 1 input item(s) failed the quality gate and were quarantined; marts were not rebuilt")
        ops.record_dq_results(wh, "run-bad-2", "batch-bad", "retail_sales", [
            CheckResult("not_null", "store_id", False, 3, [{"row": 7}]),
            CheckResult("accepted_range", "quantity", False, 1, [{"quantity": -2}]),
        ])
        key = "raw/retail_sales/ingest_date=2026-01-02/batch-bad.csv"
        manifest = BatchManifest("batch-bad", "retail_sales", key, "0" * 64, 120, 40, "2026-01-02T00:00:00", "2026-01-02")
        ops.record_landed(wh, manifest, "run-bad-2")
        ops.mark_batch(wh, "batch-bad", ops.QUARANTINED, error=orjson.dumps(FAILED_RULES).decode())
        qkey = lake.quarantine("retail_sales", "batch-bad.csv", b"store_id,quantity\n,-2\n",
                               {"source": "retail_sales", "batch_id": "batch-bad", "rules": FAILED_RULES})
        ops.quarantine.open_item(wh, source="retail_sales", pipeline="retail", batch_id="batch-bad",
                                 item="sales_2026-01-02.csv", lake_path=key, quarantine_path=qkey,
                                 rules=orjson.dumps(FAILED_RULES).decode(), run_id="run-bad-2")


@pytest.fixture
def warehouse_home(lakebox_env: dict[str, str]) -> Path:
    """LAKEBOX_HOME whose DuckDB warehouse holds every mart and a few audited runs."""
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    with open_warehouse(settings) as wh:
        for sql in [*_RETAIL_SQL, _ORDERS_SQL]:
            wh.execute(sql)
    _record_ops(settings, settings.lake)
    return settings.home


@pytest.fixture
def empty_home(lakebox_env: dict[str, str], request: pytest.FixtureRequest) -> Path:
    """A home with no warehouse file (`missing`) or with only the schemas and ops tables (`fresh`)."""
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    if getattr(request, "param", "fresh") == "fresh":
        open_warehouse(settings).close()
    return settings.home


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    import streamlit as st

    st.cache_data.clear()


_PG_TYPES = {"VARCHAR": "text", "DOUBLE": "double precision", "INTEGER": "integer", "BIGINT": "bigint",
             "DATE": "date", "TIMESTAMP": "timestamp", "BOOLEAN": "boolean"}


def copy_to_postgres(duckdb_path: Path, pg_url: str) -> None:
    """The same marts and ops tables, copied into PostgreSQL with COPY."""
    import duckdb
    import psycopg

    src = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        tables = src.execute("select table_schema, table_name from information_schema.tables "
                             "where table_schema in ('analytics', 'ops') order by all").fetchall()
        with psycopg.connect(pg_url, autocommit=True) as pg:
            for schema, table in tables:
                columns = src.execute("select column_name, data_type from information_schema.columns "
                                      "where table_schema = ? and table_name = ? order by ordinal_position",
                                      [schema, table]).fetchall()
                ddl = ", ".join(f"{name} {_PG_TYPES.get(kind, kind.replace('DECIMAL', 'numeric'))}"
                                for name, kind in columns)
                pg.execute(f"create schema if not exists {schema}")
                pg.execute(f"create table {schema}.{table} ({ddl})")
                with pg.cursor().copy(f"copy {schema}.{table} from stdin") as copy:
                    for row in src.execute(f"select * from {schema}.{table}").fetchall():
                        copy.write_row(row)
    finally:
        src.close()
