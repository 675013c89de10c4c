"""A real DuckDB warehouse with the retail and orders marts and the ops audit tables.

The marts are written with SQL from a few rules simple enough that the tests compute the
expected figures independently, in Python:
- four stores (two per region); on every day of Jan–Feb 2026 store n sells n * 1000,
  plus 500 on weekends, in n * 100 transactions;
- orders: day i of 1–10 Jan 2026 has 10 + i orders of 50.00 each, one of them cancelled;
- GitHub: two repositories, 14 commit types over six weeks, a champion classifier with
  scored commits (some labelled), and a drift report with p-values from 0.5 to 1e-12;
- WHO: three countries of the Eastern Mediterranean region (EMR) over 2000–2020, one of them
  with a predicted next observation.
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

COMMIT_TYPES = ("feat", "fix", "docs", "chore", "refactor", "test", "build", "ci", "perf", "style", "revert",
                "deps", "merge", "none")

_GITHUB_SQL = [
    "create table analytics.commit_activity as "
    "select repo, 'a' || a as author_key, 'Author ' || a as author_name, "
    "case when a = 2 then null else 'login' || a end as author_login, "
    "cast(date '2026-01-05' + cast(d as integer) as date) as activity_date, 3 + a as commits, "
    "case when a = 1 then 1 else 0 end as merges, 2 as conventional_commits, 2 as distinct_types, "
    "case when d = 0 and a = 1 then 1 else 0 end as breaking_changes, "
    "cast(date '2026-01-05' + cast(d as integer) as timestamp) as first_commit_at, "
    "cast(date '2026-01-05' + cast(d as integer) as timestamp) + interval 5 hour as last_commit_at "
    "from (values ('octo/alpha'), ('octo/beta')) as r(repo), range(1, 4) as t(a), range(0, 42, 3) as s(d)",
    "create table analytics.commit_type_trends as "
    "select repo, cast(date '2026-01-05' + cast(7 * w as integer) as date) as week_start, commit_type, "
    "cast(1 + (w + k) % 5 as bigint) as commits, 1.0 / 14 as share "
    "from (values ('octo/alpha'), ('octo/beta')) as r(repo), range(0, 6) as t(w), "
    "(values " + ", ".join(f"({k}, '{t}')" for k, t in enumerate(COMMIT_TYPES)) + ") as c(k, commit_type)",
    "create schema if not exists ml",
    "create table ml.commit_features as "
    "select 'sha' || i as sha, case when i % 2 = 0 then 'octo/alpha' else 'octo/beta' end as repo, "
    "'a' || (i % 3 + 1) as author_key, timestamp '2026-02-01 09:00:00' + to_hours(cast(i as bigint)) as committed_at, "
    "9 + i % 12 as hour, 1 + i % 7 as weekday, 'change number ' || i || ' of the parser' as message_body, "
    "30 as message_length, false as is_merge, 1 as parent_count, i as author_prior_commits, "
    "case when i % 4 = 3 then null else (['feat', 'fix', 'docs'])[1 + i % 3] end as label "
    "from range(0, 60) as t(i)",
    "create table ml.commit_predictions as "
    "select sha, case when i % 5 = 0 then 'chore' else coalesce(label, 'feat') end as predicted_type, "
    "0.5 + (i % 5) / 10.0 as probability, 'commit-classifier' as model_name, '3' as model_version, "
    "timestamp '2026-02-04 06:00:00' as scored_at "
    "from ml.commit_features join range(0, 60) as t(i) on sha = 'sha' || i",
    "create table ml.model_decisions (model_name varchar not null, version varchar not null, "
    "decision varchar not null, metric varchar not null, value double precision, champion_value double precision, "
    "reason varchar not null, decided_at timestamp not null, run_id varchar)",
    "insert into ml.model_decisions values "
    "('commit-classifier', '1', 'champion', 'f1_macro', 0.61, null, 'first model', '2026-01-20 06:00:00', 'r1'), "
    "('commit-classifier', '2', 'rejected', 'f1_macro', 0.60, 0.61, 'not better by 0.01', '2026-01-27 06:00:00', "
    "'r2'), "
    "('commit-classifier', '3', 'champion', 'f1_macro', 0.6543, 0.61, 'better by 0.0443', '2026-02-03 06:00:00', "
    "'r3')",
    "create table ml.drift_report (model_name varchar not null, feature varchar not null, method varchar not null, "
    "statistic double precision, p_value double precision, threshold double precision, drifted boolean not null, "
    "window_start timestamp, window_end timestamp, computed_at timestamp not null)",
    "insert into ml.drift_report values "
    "('commit-classifier', 'message_length', 'ks', 0.41234567, 1.234567e-12, 0.05, true, "
    "'2026-02-01', '2026-02-04', '2026-02-04 06:00:00'), "
    "('commit-classifier', 'hour', 'ks', 0.0812345, 0.0456789, 0.05, true, "
    "'2026-02-01', '2026-02-04', '2026-02-04 06:00:00'), "
    "('commit-classifier', 'repo', 'psi', 0.01234567, null, 0.2, false, "
    "'2026-02-01', '2026-02-04', '2026-02-04 06:00:00'), "
    "('commit-classifier', 'weekday', 'ks', 0.0211111, 0.5, 0.05, false, "
    "'2026-02-01', '2026-02-04', '2026-02-04 06:00:00')",
]

WHO_COUNTRIES = {  # country_code: (country_name, life expectancy in 2000, gain per year)
    "EGY": ("Egypt", 68.0, 0.20), "JOR": ("Jordan", 72.0, 0.10), "MAR": ("Morocco", 66.0, 0.30),
}

_WHO_SQL = [
    "create table analytics.life_expectancy_by_country_year as "
    "select code as country_code, name as country_name, 'EMR' as region, 'Eastern Mediterranean' as region_name, "
    "y as year, cast(base + gain * (y - 2000) as decimal(6, 2)) as life_expectancy, "
    "cast(base + gain * (y - 2000) - 1 as decimal(6, 2)) as life_expectancy_low, "
    "cast(base + gain * (y - 2000) + 1 as decimal(6, 2)) as life_expectancy_high, "
    "cast(base + gain * (y - 2000) - 2 as decimal(6, 2)) as life_expectancy_male, "
    "cast(base + gain * (y - 2000) + 2 as decimal(6, 2)) as life_expectancy_female, "
    "case when code = 'JOR' then null else cast(base + gain * (y - 2000) - 8 as decimal(6, 2)) end "
    "as healthy_life_expectancy "
    "from (values " + ", ".join(f"('{c}', '{v[0]}', {v[1]}, {v[2]})" for c, v in WHO_COUNTRIES.items())
    + ") as t(code, name, base, gain), range(2000, 2021, 5) as r(y)",
    "create table analytics.life_expectancy_trends as "
    "select country_code, max(country_name) as country_name, max(region) as region, min(year) as first_year, "
    "max(year) as last_year, count(*) as observations, min(life_expectancy) as first_life_expectancy, "
    "max(life_expectancy) as last_life_expectancy, max(life_expectancy) - min(life_expectancy) as change_over_span, "
    "regr_slope(life_expectancy, year) * 10 as change_per_decade, "
    "rank() over (partition by max(region) order by regr_slope(life_expectancy, year) desc) as rank_in_region "
    "from analytics.life_expectancy_by_country_year group by country_code",
    "create table ml.life_expectancy_predictions as "
    "select 'EGY' as country_code, 2025 as year, 73.1 as predicted, 'life-expectancy' as model_name, "
    "'2' as model_version, timestamp '2026-02-04 06:00:00' as scored_at",
]

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
    """LAKEBOX_HOME whose DuckDB warehouse holds every page's marts, ML tables and a few audited runs."""
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    with open_warehouse(settings) as wh:
        for sql in [*_RETAIL_SQL, _ORDERS_SQL, *_GITHUB_SQL, *_WHO_SQL]:
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
