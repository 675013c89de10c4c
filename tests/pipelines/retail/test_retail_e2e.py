"""`lakebox retail-generate` then `lakebox run retail` through the real CLI, to the marts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from lakebox.lake import Lake
from lakebox.pipelines.retail.pipeline import INGEST_ONLY
from lakebox.runner import RunOutcome, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.conftest import run_cli

MARTS = {
    "store_daily_performance": ["date", "store_id", "store_name", "region", "format", "total_sales",
                                "transaction_count", "avg_basket", "stockout_categories", "promo_categories",
                                "is_weekend"],
    "category_performance": ["month", "region", "category", "total_sales", "transaction_count",
                             "share_of_region_sales"],
    "promotion_effectiveness": ["promo_id", "store_id", "category", "start_date", "end_date", "discount_pct",
                                "promo_days", "avg_daily_sales_promo", "avg_daily_sales_baseline", "lift_pct"],
    "stockout_impact": ["store_id", "store_name", "region", "category", "stockout_days", "estimated_lost_sales"],
    "weekday_vs_weekend": ["store_id", "store_name", "region", "format", "avg_weekday_sales", "avg_weekend_sales",
                           "weekend_uplift_pct"],
    "store_insights": ["store_id", "store_name", "region", "insight_type", "severity", "metric_value", "insight"],
}


def query(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _ingest_only() -> RunOutcome:
    settings = Settings.load()
    with open_warehouse(settings) as wh:
        return run_pipeline(INGEST_ONLY, settings, Lake.from_settings(settings), wh)


@pytest.mark.slow
def test_generate_then_run_retail_builds_the_marts(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    gen = run_cli("retail-generate", "--stores", "6", "--months", "1", "--seed", "3", "--start", "2025-03-01",
                  env=lakebox_env)
    assert gen.returncode == 0, gen.stderr
    assert "2025-03-01 to 2025-03-31" in gen.stdout
    landing = home / "landing" / "retail"
    assert _ingest_only().status == "success"  # the drop lands and loads; marts come later

    # A corrected file, dropped after its first version loaded: the marts use the newest.
    name = "daily_sales_2025-03-05.csv"
    lines = (landing / name).read_text().split("\n")
    fields = lines[1].split(",")
    fields[3] = "100000.00"
    lines[1] = ",".join(fields)
    (landing / name).write_text("\n".join(lines))

    run = run_cli("run", "retail", env=lakebox_env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert query(home, f"select count(distinct batch_id) from raw.retail_daily_sales where file_name = '{name}'") \
        == [(2,)]
    corrected = query(home, f"select total_sales from analytics.store_daily_performance "
                            f"where date = '2025-03-05' and store_id = '{fields[1]}'")[0][0]
    newest = query(home, f"""select sum(total_sales) from raw.retail_daily_sales where file_name = '{name}'
        and store_id = '{fields[1]}' and ingested_at = (select max(ingested_at) from raw.retail_daily_sales
        where file_name = '{name}')""")[0][0]
    assert corrected == pytest.approx(newest) and corrected > 100_000
    for mart, columns in MARTS.items():
        found = [r[0] for r in query(home, f"describe analytics.{mart}")]
        assert found[:len(columns)] == columns, mart
        assert (home / "lake" / "snapshots" / mart).is_dir()
    assert query(home, "select count(*), count(distinct store_id) from analytics.store_daily_performance") == [(186, 6)]
    raw_total = query(home, "select sum(total_sales) from raw.retail_daily_sales r where ingested_at = (select "
                            "max(ingested_at) from raw.retail_daily_sales n where n.file_name = r.file_name)")[0][0]
    mart_total = query(home, "select sum(total_sales) from analytics.store_daily_performance")[0][0]
    assert mart_total == pytest.approx(raw_total)
    shares = query(home, "select min(s), max(s) from (select sum(share_of_region_sales) s "
                         "from analytics.category_performance group by month, region)")[0]
    assert shares == pytest.approx((1.0, 1.0))
    lift = query(home, "select avg(lift_pct), count(*) filter (where lift_pct is not null and "
                       "avg_daily_sales_baseline is null) from analytics.promotion_effectiveness")[0]
    assert lift[0] > 5 and lift[1] == 0
    assert query(home, "select count(*) from analytics.stockout_impact where stockout_days < 1 "
                       "or estimated_lost_sales < 0") == [(0,)]
    assert query(home, "select count(*) from analytics.weekday_vs_weekend") == [(6,)]
    assert query(home, "select count(*) from analytics.store_insights where severity not in ('high','medium','low') "
                       "or insight not like 'Store S%'") == [(0,)]

    # A drifted file fails the run, names the file and rule, and leaves the marts as they were.
    (landing / "daily_sales_2025-03-31.csv").write_text("date,store_id,category,sales\n2025-03-31,S001,grocery,1\n")
    bad = run_cli("run", "retail", env=lakebox_env)
    assert bad.returncode == 1
    assert "daily_sales_2025-03-31.csv" in bad.stderr and "schema_drift" in bad.stderr
    assert query(home, f"select total_sales from analytics.store_daily_performance "
                       f"where date = '2025-03-05' and store_id = '{fields[1]}'")[0][0] == corrected
    statuses = query(home, "select stage, status from ops.stage_runs where run_id = (select run_id from "
                           "ops.pipeline_runs where pipeline = 'retail' order by started_at desc limit 1)")
    assert statuses == [("land", "success"), ("load", "failed")]
