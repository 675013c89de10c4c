"""The generator: deterministic, and the patterns the marts are meant to find are there."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from lakebox.pipelines.retail.generator import build_drop, default_start, drop_files, generate_drops

START = dt.date(2025, 10, 1)  # October to December: the December peak is inside


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    drop = build_drop(stores=30, months=3, seed=11, start=START)
    con = duckdb.connect()
    for name in ("stores", "sales", "inventory", "promotions"):
        con.register(name, getattr(drop, name))
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    return con.execute(sql).fetchone()[0]


def test_weekends_sell_more_than_weekdays_except_express_stores(con: duckdb.DuckDBPyConnection) -> None:
    ratio = """
        select avg(total_sales) filter (where isodow(date) >= 6) / avg(total_sales) filter (where isodow(date) < 6)
        from sales join stores using (store_id) where {}"""
    assert one(con, ratio.format("true")) > 1.05
    assert one(con, ratio.format("format = 'supermarket'")) > 1.15
    assert one(con, ratio.format("format = 'express'")) < 0.95


def test_monthly_seasonality_peaks_in_december(con: duckdb.DuckDBPyConnection) -> None:
    by_month = dict(con.execute("select month(date), avg(total_sales) from sales group by 1").fetchall())
    assert by_month[12] > by_month[11] > by_month[10]


def test_regions_and_formats_differ(con: duckdb.DuckDBPyConnection) -> None:
    by_format = dict(con.execute(
        "select format, avg(total_sales) from sales join stores using (store_id) group by 1").fetchall())
    assert by_format["hypermarket"] > 1.5 * by_format["supermarket"] > 1.5 * by_format["express"]
    assert one(con, "select count(distinct region) from stores") >= 4


def test_promotions_lift_sales(con: duckdb.DuckDBPyConnection) -> None:
    lift = one(con, """
        with days as (
            select s.store_id, s.category, s.total_sales, p.promo_id is not null as on_promo
            from sales s join inventory i using (date, store_id, category)
            left join promotions p on p.store_id = s.store_id and p.category = s.category
                 and s.date between p.start_date and p.end_date
            where not i.stockout)
        select avg(promo / base) from (
            select store_id, category, avg(total_sales) filter (where on_promo) as promo,
                   avg(total_sales) filter (where not on_promo) as base
            from days group by all) where promo is not null""")
    assert lift > 1.15
    assert one(con, "select count(*) from promotions") > 100
    assert one(con, "select min(discount_pct) >= 0 and max(discount_pct) <= 1 from sales")


def test_a_stockout_cuts_the_category_to_zero_that_day(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "select count(*) from inventory where stockout") > 50
    assert one(con, """
        select count(*) from sales s join inventory i using (date, store_id, category)
        where i.stockout and (s.total_sales <> 0 or s.transaction_count <> 0 or i.on_hand_units <> 0)""") == 0
    assert one(con, """
        select count(*) from sales s join inventory i using (date, store_id, category)
        where not i.stockout and s.total_sales = 0""") == 0


def test_keys_are_unique(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "select count(*) - count(distinct (date, store_id, category)) from sales") == 0
    assert one(con, "select count(*) - count(distinct promo_id) from promotions") == 0
    assert one(con, "select count(*) - count(distinct store_id) from stores") == 0


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first = drop_files(build_drop(5, 1, 3, START))
    assert first == drop_files(build_drop(5, 1, 3, START))
    other = drop_files(build_drop(5, 1, 4, START))
    assert first["daily_sales_2025-10-01.csv"] != other["daily_sales_2025-10-01.csv"]


def test_generate_drops_writes_every_file_and_nothing_in_the_future(tmp_path: Path) -> None:
    summary = generate_drops(str(tmp_path / "drop"), stores=3, months=1, seed=1, start=None)
    names = sorted(p.name for p in (tmp_path / "drop").iterdir())
    days = {n.removeprefix("daily_sales_").removesuffix(".csv") for n in names if n.startswith("daily_sales_")}
    assert "stores.csv" in names
    assert len(days) >= 28 and len([n for n in names if n.startswith("inventory_")]) == len(days)
    assert max(days) < dt.date.today().isoformat()
    assert min(days) == default_start(1).isoformat()
    assert f"Wrote {len(names)} files" in summary
    header = (tmp_path / "drop" / f"daily_sales_{max(days)}.csv").read_text().splitlines()[0]
    assert header == "date,store_id,category,total_sales,transaction_count,discount_pct"
