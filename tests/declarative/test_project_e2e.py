"""A project of its own in a temp dir, with one REST and one files pipeline declared in TOML
and SQL (no Python), run end to end on DuckDB and PostgreSQL, and seen by `lakebox serve`'s
Dagster definitions."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakebox.declarative.tutorial_api import create_app
from lakebox.ingest.standin import serve_in_thread
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

TOKEN = "t0ken-for-the-test"

AIR = """
description = "hourly PM2.5"

[source]
type = "rest"
base_url = "http://127.0.0.1:9"      # replaced by LAKEBOX_AIR_BASE_URL in the test
auth = { type = "bearer", token_env = "AIR_TOKEN" }
paginator = { type = "page_number", page_param = "page", total_path = "meta.pages" }

[[source.resources]]
name = "readings"
path = "/v3/measurements"
params = { limit = 500 }
data_selector = "results"
primary_key = ["city", "measured_at"]
write_disposition = "merge"
incremental = { cursor_path = "measured_at", param = "since", initial_value = "2024-01-01T00:00:00Z" }

[source.resources.contract]
columns.city = { type = "text", required = true }
columns.measured_at = { type = "timestamp", required = true }
columns.pm25 = { type = "number", required = true, min = 0 }
columns.wind_speed = { type = "number", min = 0 }
"""

AIR_MODELS = {
    "staging/stg_air_readings.sql": "select city, cast(measured_at as timestamp) as measured_at, "
    "cast(pm25 as double precision) as pm25 from {{ source('air', 'readings') }}",
    "marts/air_daily.sql": "select city, cast(measured_at as date) as day, count(*) as readings, "
    "avg(pm25) as pm25_mean from {{ ref('stg_air_readings') }} group by 1, 2",
}

SHOPS = r"""
description = "daily sales files from the shops"

[source]
type = "files"

[[source.resources]]
name = "sales"
glob = "sales_*.csv"
format = "csv"
delimiter = ";"
partition_pattern = 'sales_(\d{4}-\d{2}-\d{2})\.csv'
primary_key = ["sale_id"]

[source.resources.contract]
columns.sale_id = { type = "integer", required = true, unique = true }
columns.shop_code = { type = "text", required = true, pattern = "[A-Z]{2}[0-9]" }
columns.sold_on = { type = "date", required = true }
columns.quantity = { type = "integer", required = true, min = 1 }
columns.unit_price = { type = "number", required = true, min = 0 }

[[source.resources]]
name = "shops"
glob = "shops.jsonl"
format = "jsonl"
primary_key = ["shop_code"]
write_disposition = "replace"

[source.resources.contract]
columns.shop_code = { type = "text", required = true, unique = true }
columns.city = { type = "text", required = true }

[[source.resources]]
name = "targets"
glob = "targets.parquet"
format = "parquet"
write_disposition = "replace"

[source.resources.contract]
columns.shop_code = { type = "text", required = true }
columns.daily_target = { type = "number", required = true, min = 0 }
"""

SHOPS_MODELS = {
    "staging/stg_shops_sales.sql": "select sale_id, shop_code, cast(sold_on as date) as sold_on, quantity, "
    "cast(unit_price as double precision) as unit_price from {{ source('shops', 'sales') }}",
    "marts/shops_daily_revenue.sql": """
select s.shop_code, h.city, s.sold_on, sum(s.quantity * s.unit_price) as revenue, max(t.daily_target) as target
from {{ ref('stg_shops_sales') }} as s
join {{ source('shops', 'shops') }} as h on h.shop_code = s.shop_code
left join {{ source('shops', 'targets') }} as t on t.shop_code = s.shop_code
group by 1, 2, 3
""",
}

SHOP_CODES = ("LX1", "PT2", "MD3")
DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="module")
def air_api() -> Iterator[str]:
    with serve_in_thread(create_app(token=TOKEN, days=5)) as served:
        yield served.url


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def _sales_csv(day: dt.date, first_id: int, bad: bool = False) -> tuple[str, float]:
    """One day's sales file (`;`-separated, a spaced header as shops' tills write it) and its revenue."""
    lines = ["Sale ID;Shop Code;Sold On;Quantity;Unit Price"]
    revenue = 0.0
    for i in range(30):
        quantity = 1 + i % 4
        price = 2.5 + (i % 7)
        if bad and i == 5:
            quantity = -3
        lines.append(f"{first_id + i};{SHOP_CODES[i % 3]};{day.isoformat()};{quantity};{price:.2f}")
        revenue += quantity * price
    return "\n".join(lines) + "\n", revenue


def make_project(root: Path, env: dict[str, str]) -> tuple[Path, float]:
    out = run_cli("init", str(root), env=env)
    assert out.returncode == 0, out.stderr
    (root / "lakebox.toml").write_text('[lakebox]\npipelines = ["air", "shops"]\n')
    _write(root / "pipelines" / "air", {"pipeline.toml": AIR, **{f"models/{k}": v for k, v in AIR_MODELS.items()}})
    _write(root / "pipelines" / "shops",
           {"pipeline.toml": SHOPS, **{f"models/{k}": v for k, v in SHOPS_MODELS.items()}})
    landing = root / ".lakebox" / "landing" / "shops"
    landing.mkdir(parents=True)
    total = 0.0
    for n, day in enumerate(DAYS):
        text, revenue = _sales_csv(day, 1000 * (n + 1))
        (landing / f"sales_{day.isoformat()}.csv").write_text(text)
        total += revenue
    (landing / "shops.jsonl").write_text("".join(
        f'{{"shop_code": "{code}", "City": "{city}"}}\n' for code, city in zip(SHOP_CODES, ("Lisbon", "Porto", "Madrid"),
                                                                             strict=True)))
    pq.write_table(pa.table({"Shop Code": list(SHOP_CODES), "Daily Target": [100.0, 120.0, 90.0]}),
                   landing / "targets.parquet")
    return landing, total


def _query(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    url = env.get("LAKEBOX_WAREHOUSE")
    if url and url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as con:
            return [tuple(r) for r in con.execute(sql).fetchall()]
    with duckdb.connect(str(Path(env["LAKEBOX_PROJECT"]) / ".lakebox" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "duckdb":
        yield {}
        return
    url = request.getfixturevalue("pg_url")
    yield {"LAKEBOX_WAREHOUSE": url}


def test_a_project_of_a_rest_and_a_files_pipeline(tmp_path: Path, air_api: str, warehouse: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
    env.update(warehouse, AIR_TOKEN=TOKEN, LAKEBOX_AIR_BASE_URL=air_api, LAKEBOX_LOG_LEVEL="WARNING")
    project = tmp_path / "myproject"
    landing, revenue = make_project(project, env)
    env["LAKEBOX_PROJECT"] = str(project)

    first = run_cli("run", env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-4000:]
    assert _query(env, "select count(*), count(distinct city) from raw.air_readings") == [(5 * 24 * 3, 3)]
    assert _query(env, "select count(*), sum(readings) from analytics.air_daily") == [(5 * 3, 5 * 24 * 3)]
    assert _query(env, "select count(*), count(distinct lake_path) from raw.shops_sales") == [(90, 3)]
    [(total, shops, days, target)] = _query(env, "select sum(revenue), count(distinct shop_code), "
                                                 "count(distinct sold_on), sum(target) from analytics.shops_daily_revenue")
    assert round(float(total), 2) == round(revenue, 2) and (shops, days) == (3, 3)
    assert float(target) == 3 * (100.0 + 120.0 + 90.0)  # "Daily Target" from Parquet, normalised

    # a new day with a bad row: the file is quarantined (freeze), the rest stays, the run is partial
    bad_day = DAYS[-1] + dt.timedelta(days=1)
    text, _ = _sales_csv(bad_day, 9000, bad=True)
    (landing / f"sales_{bad_day.isoformat()}.csv").write_text(text)
    second = run_cli("run", "shops", env=env, timeout=600)
    assert second.returncode == 4, second.stderr[-4000:]
    assert f"sales_{bad_day.isoformat()}.csv" in second.stderr and "quantity" in second.stderr
    assert _query(env, "select count(*) from raw.shops_sales") == [(90,)]
    shown = run_cli("quarantine", "list", env=env)
    assert shown.returncode == 0 and f"sales_{bad_day.isoformat()}.csv" in shown.stdout

    again = run_cli("run", "air", env=env, timeout=600)  # incremental: nothing new, the overlap merged away
    assert again.returncode == 0, again.stderr[-4000:]
    assert _query(env, "select count(*) from raw.air_readings") == [(5 * 24 * 3,)]


def test_serve_shows_the_declared_pipelines_assets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
    project = tmp_path / "myproject"
    make_project(project, env)
    env["LAKEBOX_PROJECT"] = str(project)
    listing = subprocess.run(
        [sys.executable, "-c", "from lakebox.orchestration.dagster import build_definitions\n"
         "d = build_definitions()\n"
         "print('\\n'.join(sorted('.'.join(k.path) for k in d.resolve_asset_graph().get_all_asset_keys())))\n"
         "print('\\n'.join(sorted(j.name for j in d.jobs)))\n"
         "print('\\n'.join(sorted(s.name for s in [*d.sensors, *d.schedules])))"],
        env=env, capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr[-3000:]
    shown = set(listing.stdout.split())
    assert {"raw.air_readings", "staging.stg_air_readings", "analytics.air_daily", "air_job"} <= shown
    assert {"raw.shops_sales", "raw.shops", "raw.shops_targets", "analytics.shops_daily_revenue",
            "shops_job"} <= shown
    assert {"shops_new_drop", "air_schedule"} <= shown  # file-fed: a drop sensor; polled: a schedule
    # a resource named like its pipeline (shops.shops) is raw.shops, not raw.shops_shops
