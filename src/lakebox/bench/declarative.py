"""`lakebox bench --declarative`: a pipeline declared in TOML and SQL is as fast as orders.

Issue 20's target: 100k records through a declarative REST pipeline within 1.1x of the
orders pipeline on the same stand-in (the bundled orders API, served by the bench on
loopback). The declarative one is a project of its own (`lakebox init`, one
`pipeline.toml` reading the same API, staging and a daily mart in SQL), each run a
one-shot `lakebox run` in a new home; the figure compared is fetch and load (what the TOML
drives: the paging, the gate, the raw load) from ops.stage_runs, start-up aside; the dbt
models differ (each pipeline's own SQL), so the whole runs and walls are shown beside it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RECORDS = 100_000
NAME = "shop_orders"  # the declared pipeline (its settings: LAKEBOX_<NAME>_*)
RATIO_TARGET = 1.1

PIPELINE = """description = "the orders API, declared"

[source]
type = "rest"
base_url = "http://127.0.0.1:9"   # the bench sets the pipeline's base_url setting to its stand-in

[[source.resources]]
name = "orders"
path = "/v1/orders"
params = { limit = 10000 }
data_selector = "records"
primary_key = ["order_id", "updated_at"]
paginator = { type = "cursor", cursor_path = "next_cursor", cursor_param = "cursor" }
incremental = { cursor_path = "updated_at", param = "updated_since" }

[source.resources.contract]
columns.order_id = { type = "text", required = true }
columns.customer_id = { type = "text", required = true }
columns.amount = { type = "number", required = true, min = 0 }
columns.currency = { type = "text", required = true, pattern = "[A-Z]{3}" }
columns.status = { type = "text", required = true, accepted = ["placed", "paid", "shipped", "cancelled", "refunded"] }
columns.created_at = { type = "timestamp", required = true }
columns.updated_at = { type = "timestamp", required = true }
"""

MODELS = {
    "staging/stg_shop_orders.sql": """
with ranked as (
    select *, row_number() over (partition by order_id order by updated_at desc, batch_id desc) as version_rank
    from {{ source('shop_orders', 'orders') }}
)
select order_id, customer_id, cast(amount as numeric(18, 2)) as amount, upper(currency) as currency, status,
       created_at, updated_at, cast(created_at as date) as order_date
from ranked where version_rank = 1
""",
    "marts/shop_daily_orders.sql": """
select order_date, count(*) as total_orders, cast(sum(amount) as numeric(18, 2)) as total_amount,
       count(distinct customer_id) as unique_customers
from {{ ref('stg_shop_orders') }} group by order_date
""",
}


def make_project(root: Path) -> Path:
    from lakebox.project import init_project

    project = root / "declared-orders"
    init_project(project)
    (project / "lakebox.toml").write_text('[lakebox]\npipelines = ["shop_orders", "orders"]\n')
    folder = project / "pipelines" / "shop_orders"
    for name, text in {"pipeline.toml": PIPELINE, **{f"models/{k}": v for k, v in MODELS.items()}}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return project


def _run(pipeline: str, home: Path, env: dict[str, str]) -> dict[str, Any]:
    from lakebox.bench import _last_run_stages

    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lakebox.cli", "run", pipeline], env={**env, "LAKEBOX_HOME": str(home)},
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lakebox run {pipeline} failed:\n{proc.stderr[-3000:]}")
    stages = _last_run_stages({**env, "LAKEBOX_HOME": str(home)})
    return {"wall": wall, "seconds": sum(s["seconds"] for s in stages), "stages": stages}


def bench_declarative(root: Path, records: int = RECORDS) -> dict[str, Any]:
    from lakebox.bench import _env, _say
    from lakebox.ingest.standin import serve_in_thread
    from lakebox.pipelines.orders.api import create_app

    project = make_project(root)
    _say(f"{records:,} orders through a declarative pipeline and through orders, the same API on loopback …")
    with serve_in_thread(create_app(records, 42)) as api:
        env = _env(root / "unused", LAKEBOX_PROJECT=str(project), LAKEBOX_LOG_LEVEL="WARNING",
                   LAKEBOX_ORDERS_API_URL=api.url, **{f"LAKEBOX_{NAME.upper()}_BASE_URL": api.url})
        runs = {"declarative": _run("shop_orders", root / "declared-home", env),
                "orders": _run("orders", root / "orders-home", env)}
    return {"records": records, **runs, "ratio": _ingest(runs["declarative"]) / _ingest(runs["orders"])}


INGEST = ("fetch", "load")  # what pipeline.toml drives; the dbt models are each pipeline's own SQL


def _ingest(run: dict[str, Any]) -> float:
    return float(sum(s["seconds"] for s in run["stages"] if s["stage"] in INGEST))


def targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    d, o = r["declarative"], r["orders"]
    return [(f"{r['records']:,} records through a declarative REST pipeline ≤ {RATIO_TARGET}× orders on the same "
             "stand-in (fetch and load, from ops.stage_runs: the models are each one's own SQL)",
             f"{r['ratio']:.2f}× ({_ingest(d):.2f} s vs {_ingest(o):.2f} s; whole runs {d['seconds']:.2f} vs "
             f"{o['seconds']:.2f} s)",
             "yes" if r["ratio"] <= RATIO_TARGET else "no")]


def section(r: dict[str, Any]) -> list[str]:
    lines = [f"## A declarative pipeline beside orders, {r['records']:,} records over HTTP", "",
             "| stage | declarative s | orders s |", "|---|---:|---:|"]
    orders = {s["stage"]: s["seconds"] for s in r["orders"]["stages"]}
    lines += [f"| {s['stage']} | {s['seconds']:.2f} | {orders.get(s['stage'], 0.0):.2f} |"
              for s in r["declarative"]["stages"]]
    lines += [f"| **run** | **{r['declarative']['seconds']:.2f}** | **{r['orders']['seconds']:.2f}** |",
              f"| wall, start-up included | {r['declarative']['wall']:.2f} | {r['orders']['wall']:.2f} |", ""]
    return lines
