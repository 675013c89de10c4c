"""lakebox's one-statement `table` materialization on DuckDB: a failed build keeps the old
table, and a view of the same name is replaced by the table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from lakebox.errors import TransformError
from lakebox.settings import Settings
from lakebox.transform.dbt import run_dbt
from lakebox.warehouse import open_warehouse
from tests.conftest import run_cli


@pytest.fixture
def retail_home(lakebox_env: dict[str, str]) -> Path:
    gen = run_cli("retail-generate", "--stores", "3", "--months", "1", "--seed", "4", "--start", "2026-01-01",
                  env=lakebox_env)
    assert gen.returncode == 0, gen.stderr
    run = run_cli("run", "retail", env=lakebox_env)
    assert run.returncode == 0, run.stderr
    return Path(lakebox_env["LAKEBOX_HOME"])


def sql(home: Path, statement: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        return con.execute(statement).fetchall()


def build_retail() -> None:
    settings = Settings.load()
    with open_warehouse(settings) as wh:
        run_dbt(settings, wh, ["path:models/retail"])


def test_a_failing_model_leaves_the_table_it_would_replace(retail_home: Path) -> None:
    before = sql(retail_home, "select * from analytics.store_daily_performance order by date, store_id")
    assert before
    sql(retail_home, "alter table raw.retail_daily_sales rename column total_sales to total_sales_renamed")
    with pytest.raises(TransformError, match="stg_retail_daily_sales|store_daily_performance|int_retail_category_days"):
        build_retail()
    assert sql(retail_home, "select * from analytics.store_daily_performance order by date, store_id") == before


def test_a_view_of_the_same_name_becomes_the_table(retail_home: Path) -> None:
    rows = sql(retail_home, "select count(*) from analytics.weekday_vs_weekend")[0][0]
    sql(retail_home, "drop table analytics.weekday_vs_weekend")
    sql(retail_home, "create view analytics.weekday_vs_weekend as select 1 as x")
    build_retail()
    kind = sql(retail_home, "select table_type from information_schema.tables "
                            "where table_schema = 'analytics' and table_name = 'weekday_vs_weekend'")
    assert kind == [("BASE TABLE",)]
    assert sql(retail_home, "select count(*) from analytics.weekday_vs_weekend")[0][0] == rows
