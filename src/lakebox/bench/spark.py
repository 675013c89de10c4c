"""Bench: orders lake → marts on a local Spark standalone cluster beside the DuckDB run.

    python -m lakebox.bench.spark --orders 1M [--workers 2]

The same pages are landed in two scratch homes; each home runs the orders pipeline's
load, transform and snapshot stages (no HTTP fetch) in its own process, as `lakebox
bench` does, twice: as `lakebox watch` would, with dbt imported and the project parsed
(which on Spark also starts the session: JVM, Hive catalog) before the clock; then the
run's raw table and models are dropped, its batches marked landed again, and the same
process runs the same work once more, as a watcher's later run over 1M new orders would.
The second run is the lake → marts figure of each; both runs are reported. On Spark the
first run pays the executors' JIT warm-up (a fresh executor JVM runs the same build several
times slower), which a watcher pays once: so it counts with Spark's start-up, reported
apart from the work: the cluster (a master and N workers × 1 core, 1 GB each), the driver's
session (measured in a process of its own: JVM, SparkSession, Hive catalog, first query),
and the first run's excess over the second. Nothing is kept from the first run but warm
JVMs: no table, no cached data. The marts of both second runs are compared row by row.
Each dbt model's and the tests' seconds come from dbt's own log of each run, and the
machine's load average is reported beside the ratio (on a shared machine it moves the
Spark run more: three JVMs on the same cores).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from lakebox.bench import _env, _say, _worker, human, parse_size

ORDERS_TABLES = ("raw.orders", "staging.stg_orders", "analytics.daily_order_metrics")


def session_start() -> dict[str, Any]:
    """Seconds to a usable warehouse: JVM, SparkSession, Hive catalog, first query."""
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    t0 = time.perf_counter()
    with open_warehouse(Settings.load()) as wh:
        wh.query("select 1")
    return {"seconds": time.perf_counter() - t0}


def _marts_equal(spark_home: Path, duck_home: Path) -> tuple[bool, int]:
    import duckdb

    files = sorted((spark_home / "spark-warehouse" / "analytics.db" / "daily_order_metrics").glob("*.parquet"))
    columns = "order_date, total_orders, total_amount, avg_amount, unique_customers, cancelled_orders, refunded_amount"
    listed = ", ".join(f"'{f}'" for f in files)
    on_spark = duckdb.connect().execute(f"select {columns} from read_parquet([{listed}]) order by order_date").fetchall()
    with duckdb.connect(str(duck_home / "warehouse.duckdb"), read_only=True) as con:
        on_duckdb = con.execute(f"select {columns} from analytics.daily_order_metrics order by order_date").fetchall()
    same = len(on_spark) == len(on_duckdb) and all(
        _close(a, b) for x, y in zip(on_spark, on_duckdb, strict=True) for a, b in zip(x, y, strict=True))
    return same, len(on_spark)


_NODE_DONE = re.compile(r"\d+ of \d+ (?:OK created sql \w+ model (\S+)|PASS (\S+)) .*\[(?:OK|PASS) in ([\d.]+)s\]")


def dbt_seconds(home: Path, build: int = -1) -> dict[str, float]:
    """Seconds per dbt model, and all tests together, of one build (the last by default)
    in the home's dbt log (info level)."""
    log = home / "dbt" / "logs" / "dbt.log"
    builds: list[dict[str, float]] = []
    for invocation in re.split(r"\n=+ [\d:.]+ \| ", log.read_text(errors="replace")) if log.exists() else []:
        seconds: dict[str, float] = {}
        for found in _NODE_DONE.finditer(invocation):
            name = found.group(1) or "tests"
            seconds[name] = round(seconds.get(name, 0.0) + float(found.group(3)), 2)
        if seconds:
            builds.append(seconds)
    return builds[build] if builds else {}


def _close(a: Any, b: Any) -> bool:
    """Equal, numbers within a cent (Spark averages decimals exactly, DuckDB in doubles)."""
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        return abs(float(a) - float(b)) <= 0.011
    return bool(a == b)


def run(count: int, workers: int) -> dict[str, Any]:
    from lakebox.warehouse.spark_cluster import LocalCluster

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lakebox-bench-spark-") as tmp:
        root = Path(tmp)
        duck_env = _env(root / "duckdb", LAKEBOX_DBT_LOG_LEVEL="info")
        _say(f"DuckDB: landing {human(count)} orders, then lake → marts")
        _worker("prepare", duck_env, count=count)
        on_duckdb = _worker("pipeline", duck_env, warm=True, again=ORDERS_TABLES)

        t0 = time.perf_counter()
        with LocalCluster(root / "cluster", workers=workers) as cluster:
            cluster_start = time.perf_counter() - t0
            spark_env = _env(root / "spark", LAKEBOX_WAREHOUSE=cluster.url, LAKEBOX_DBT_LOG_LEVEL="info")
            _say(f"Spark ({cluster.url}, {workers} workers × 1 core): landing, then lake → marts")
            session = _spark_worker(spark_env)
            _worker("prepare", spark_env, count=count)
            on_spark = _worker("pipeline", spark_env, warm=True, again=ORDERS_TABLES)
        same, days = _marts_equal(root / "spark", root / "duckdb")
        dbt_duckdb, dbt_spark = dbt_seconds(root / "duckdb"), dbt_seconds(root / "spark")
        first_dbt_spark = dbt_seconds(root / "spark", -2)

    def stages(result: dict[str, Any]) -> dict[str, float]:
        return {s["stage"]: round(s["seconds"], 2) for s in result["stages"]}

    return {
        "orders": count,
        "duckdb_seconds": round(on_duckdb["seconds"], 2),
        "duckdb_stages": stages(on_duckdb),
        "spark_seconds": round(on_spark["seconds"], 2),
        "spark_stages": stages(on_spark),
        "duckdb_dbt_seconds": dbt_duckdb,
        "spark_dbt_seconds": dbt_spark,
        "ratio": round(on_spark["seconds"] / on_duckdb["seconds"], 2),
        "first_run": {
            "duckdb_seconds": round(on_duckdb["first"]["seconds"], 2),
            "spark_seconds": round(on_spark["first"]["seconds"], 2),
            "duckdb_stages": stages(on_duckdb["first"]),
            "spark_stages": stages(on_spark["first"]),
            "spark_dbt_seconds": first_dbt_spark,
            "ratio": round(on_spark["first"]["seconds"] / on_duckdb["first"]["seconds"], 2),
        },
        "spark_cluster_start_seconds": round(cluster_start, 2),
        "spark_session_start_seconds": round(session["seconds"], 2),
        "spark_first_run_excess_seconds": round(on_spark["first"]["seconds"] - on_spark["seconds"], 2),
        "marts_equal": same,
        "mart_rows": days,
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
    }


def _spark_worker(env: dict[str, str]) -> dict[str, Any]:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "lakebox.bench.spark", "--session-start"],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"Spark session start failed:\n{proc.stderr[-3000:]}")
    return dict(orjson.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="1M", help="orders to land (e.g. 100k, 1M)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--session-start", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.session_start:
        sys.stdout.write(orjson.dumps(session_start()).decode() + "\n")
        return
    result = run(parse_size(args.orders), args.workers)
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
