"""Spark as the warehouse, on a real standalone cluster (a master and two workers on
loopback): the bundled pipelines (orders, retail, github_commits, who_gho, ML stages
included) give the marts DuckDB gives; a batch is loaded once even when the ledger lost
its mark after the data was written, and what a SIGKILLed load staged is removed by the
next run; the gate keeps a bad file out; a worker killed in the middle of a dbt build is
survived.

Spark's tables are read back from their Parquet files (`<dir>/<schema>.db/<table>/*.parquet`,
what Spark itself lists), so these checks need no second Spark session.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from lakebox.pipelines import get_spec
from tests.conftest import _LAKEBOX_VARS, run_cli

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ORDERS = 2000
ORDER_MARTS = ("staging.stg_orders", "analytics.daily_order_metrics")
REQUIRE_SPARK = os.environ.get("LAKEBOX_REQUIRE_SPARK") == "1"
# `lakebox run ...` that dies (SIGKILL) when a transaction that staged a batch file commits,
# before the rename; transactions with nothing staged (run and stage records) go through
KILLED_BEFORE_RENAME = ("import os, signal; from lakebox.warehouse.spark import SparkWarehouse; "
                        "SparkWarehouse._publish = lambda self: self._staged and os.kill(os.getpid(), signal.SIGKILL); "
                        "from lakebox.cli import main; main()")


def _spark_reason() -> str | None:
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"pyspark or dbt-spark not installed ({exc}); pip install 'lakebox[spark]'"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java on PATH (Spark needs Java 17)"
    return None


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A standalone master and two 1-core workers on 127.0.0.1 for the whole session."""
    reason = _spark_reason()
    if reason:
        if REQUIRE_SPARK:
            pytest.fail(f"LAKEBOX_REQUIRE_SPARK=1 but {reason}")
        pytest.skip(reason)
    from lakebox.warehouse.spark_cluster import LocalCluster

    with LocalCluster(tmp_path_factory.mktemp("spark-cluster"), workers=2) as running:
        yield running


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LAKEBOX_VARS}
    return {**env, "LAKEBOX_HOME": str(home), "LAKEBOX_CONFIG": "off",
            "LAKEBOX_HTTP_BACKOFF": "0.01", "LAKEBOX_HTTP_MAX_DELAY": "0.2", **extra}


def spark_table(home: Path, table: str) -> list[Path]:
    schema, name = table.split(".")
    return sorted((home / "spark-warehouse" / f"{schema}.db" / name).glob("*.parquet"))


def spark_rows(home: Path, table: str) -> list[tuple[Any, ...]]:
    files = spark_table(home, table)
    assert files, f"Spark table {table} has no data files under {home / 'spark-warehouse'}"
    listed = ", ".join(f"'{f}'" for f in files)
    return _rows(duckdb.sql(f"select * from read_parquet([{listed}])"))


def duckdb_rows(home: Path, table: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return _rows(con.sql(f"select * from {table}"))


def _rows(relation: Any) -> list[tuple[Any, ...]]:
    """Rows without lakebox's bookkeeping columns (`_...`: ingestion times differ per run),
    numbers as floats, timestamps naive, in a stable order."""
    keep = [i for i, name in enumerate(relation.columns) if not name.startswith("_")]
    rows = [tuple(_norm(row[i]) for i in keep) for row in relation.fetchall()]
    return sorted(rows, key=lambda r: tuple(f"{v:.2f}" if isinstance(v, float) else repr(v) for v in r))


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def assert_same_marts(spark_home: Path, duck_home: Path, tables: tuple[str, ...]) -> None:
    for table in tables:
        expected = duckdb_rows(duck_home, table)
        assert expected, f"{table} is empty on DuckDB"
        actual = spark_rows(spark_home, table)
        assert len(actual) == len(expected), f"{table}: {len(actual)} rows on Spark, {len(expected)} on DuckDB"
        approx = [tuple(pytest.approx(v, rel=1e-9, abs=0.006) if isinstance(v, float) else v for v in row)
                  for row in expected]
        mismatched = [(a, e) for a, e in zip(actual, approx, strict=True) if a != e]
        assert not mismatched, f"{table}: {len(mismatched)} rows differ, e.g. {mismatched[:2]}"


def ops_db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "ops.sqlite")


# ------------------------------------------------------------------ orders
@pytest.fixture(scope="module")
def orders_homes(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`lakebox run orders` (2k orders from the bundled API) on the cluster and on DuckDB."""
    root = tmp_path_factory.mktemp("orders")
    spark_home, duck_home = root / "spark", root / "duckdb"
    on_spark = run_cli("run", "orders", env=_env(spark_home, LAKEBOX_WAREHOUSE=cluster.url,
                                                 LAKEBOX_DEMO_ORDERS=str(ORDERS)), timeout=900)
    assert on_spark.returncode == 0, on_spark.stderr[-4000:]
    on_duckdb = run_cli("run", "orders", env=_env(duck_home, LAKEBOX_DEMO_ORDERS=str(ORDERS)))
    assert on_duckdb.returncode == 0, on_duckdb.stderr[-3000:]
    return spark_home, duck_home


def test_orders_on_spark_give_the_marts_duckdb_gives(orders_homes: tuple[Path, Path]) -> None:
    spark_home, duck_home = orders_homes
    assert_same_marts(spark_home, duck_home, ORDER_MARTS)
    assert sum(r[1] for r in spark_rows(spark_home, "analytics.daily_order_metrics")) == ORDERS
    # Spark's own layout: one Parquet file per loaded batch, named by its id
    with ops_db(spark_home) as ops:
        loaded = [r[0] for r in ops.execute("select batch_id from batches where status = 'loaded'")]
        stages = {r[0] for r in ops.execute("select stage from stage_runs where status = 'success'")}
    assert [f.name for f in spark_table(spark_home, "raw.orders")] == sorted(f"batch-{b}.parquet" for b in loaded)
    assert {"fetch", "load", "transform", "snapshot"} <= stages


def test_a_batch_whose_ledger_mark_was_lost_is_loaded_once(orders_homes: tuple[Path, Path], cluster: Any) -> None:
    """The state a crash between publishing a batch's file and committing its ledger mark
    leaves: the file is in the table, the ledger says 'landed'. Then a run is killed after
    staging the batch again. The next run removes the staged leftover and loads the batch
    again; its file is replaced, not doubled."""
    spark_home, duck_home = orders_homes
    raw_before = spark_rows(spark_home, "raw.orders")
    files_before = [f.name for f in spark_table(spark_home, "raw.orders")]
    with ops_db(spark_home) as ops:
        ops.execute("update batches set status = 'landed', loaded_at = null where source = 'orders'")
    # a run killed (SIGKILL) after staging the batch's file, before renaming it into the table
    staging = spark_home / "spark-warehouse" / "raw.db" / "orders" / ".lakebox-staging"
    env = _env(spark_home, LAKEBOX_WAREHOUSE=cluster.url, LAKEBOX_DEMO_ORDERS=str(ORDERS))
    crashed = subprocess.run([sys.executable, "-c", KILLED_BEFORE_RENAME, "run", "orders"], env=env,
                             capture_output=True, text=True, timeout=900)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-4000:]
    assert len(list(staging.glob("*.parquet"))) == 1
    assert [f.name for f in spark_table(spark_home, "raw.orders")] == files_before
    again = run_cli("run", "orders", "--full-refresh",
                    env=_env(spark_home, LAKEBOX_WAREHOUSE=cluster.url, LAKEBOX_DEMO_ORDERS=str(ORDERS)), timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    assert [f.name for f in spark_table(spark_home, "raw.orders")] == files_before
    assert len(spark_rows(spark_home, "raw.orders")) == len(raw_before) == ORDERS
    with ops_db(spark_home) as ops:
        assert {r[0] for r in ops.execute("select status from batches where source = 'orders'")} == {"loaded"}
        runs = [r[0] for r in ops.execute("select status from pipeline_runs order by started_at")]
    assert runs == ["success", "failed", "success"]  # the killed run closed as interrupted
    assert not list(staging.glob("*"))  # the killed run's staged file is gone
    assert_same_marts(spark_home, duck_home, ORDER_MARTS)


def test_a_worker_killed_during_a_dbt_build_is_survived(
    orders_homes: tuple[Path, Path], cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third worker joins and this process's app has an executor on each of the three;
    the orders build runs here, and when dbt starts its second model that worker and its
    executor are SIGKILLed (from dbt's own NodeStart event, not a timer). Spark drops the
    lost executor and runs the rest on the two left, and the marts are still right."""
    import dbt.cli.main

    from lakebox.settings import Settings
    from lakebox.transform.dbt import run_dbt
    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.spark import stop_spark
    from lakebox.warehouse.spark_cluster import alive_workers

    spark_home, duck_home = orders_homes
    extra = cluster.add_worker()
    settings = Settings.load(env=_env(spark_home, LAKEBOX_WAREHOUSE=cluster.url), cwd=spark_home)
    killed: list[str] = []

    def kill_at_second_model(event: Any) -> None:
        if event.info.name == "NodeStart" and event.data.node_info.unique_id.endswith(".daily_order_metrics"):
            cluster.kill(extra)
            killed.append(event.data.node_info.unique_id)

    class Runner(dbt.cli.main.dbtRunner):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, callbacks=[kill_at_second_model], **kwargs)

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", Runner)
    try:
        with open_warehouse(settings) as wh:
            for table in ORDER_MARTS:  # rebuilt from raw below, so old files cannot pass the check
                wh.execute(f"drop table if exists {table}")
            cluster.wait_for(lambda s: sum(w["coresused"] for w in alive_workers(s)) == 3,
                             "this process's executors on all three workers")
            outcome = run_dbt(settings, wh, ["path:models/orders"])
    finally:
        stop_spark()
    assert killed == ["model.lakebox.daily_order_metrics"]
    assert outcome.models == 2 and outcome.tests > 0
    assert len(alive_workers(cluster.wait_for(lambda s: len(alive_workers(s)) == 2, "the master to drop the worker"))) == 2
    assert_same_marts(spark_home, duck_home, ORDER_MARTS)


# ------------------------------------------------------------------ retail
BAD_FILE = "daily_sales_2026-03-01.csv"


@pytest.fixture(scope="module")
def retail_homes(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Three stores × February's drops, run on the cluster and on DuckDB: (spark home,
    duckdb home, landing folder)."""
    from lakebox.pipelines.retail.generator import generate_drops

    root = tmp_path_factory.mktemp("retail")
    landing = root / "landing"
    generate_drops(str(landing / "retail"), stores=3, months=1, seed=3, start="2026-02-01")
    spark_home, duck_home = root / "spark", root / "duckdb"
    on_spark = run_cli("run", "retail", env=_env(spark_home, LAKEBOX_WAREHOUSE=cluster.url,
                                                 LAKEBOX_LANDING=str(landing)), timeout=1200)
    assert on_spark.returncode == 0, on_spark.stderr[-4000:]
    on_duckdb = run_cli("run", "retail", env=_env(duck_home, LAKEBOX_LANDING=str(landing)))
    assert on_duckdb.returncode == 0, on_duckdb.stderr[-3000:]
    return spark_home, duck_home, landing


def test_retail_on_spark_gives_the_marts_duckdb_gives(retail_homes: tuple[Path, Path, Path]) -> None:
    MARTS = get_spec("retail").marts

    spark_home, duck_home, _ = retail_homes
    assert_same_marts(spark_home, duck_home, tuple(MARTS))


def test_the_gate_keeps_a_bad_file_out_of_spark(retail_homes: tuple[Path, Path, Path], cluster: Any) -> None:
    """A new day's sales file with a negative sale: quarantined with its rule and column,
    none of its rows in Spark, the run ends partial (exit 4) with the item open, and the
    marts stay as they were."""
    MARTS = get_spec("retail").marts

    spark_home, duck_home, landing = retail_homes
    good = (landing / "retail" / "daily_sales_2026-02-28.csv").read_text().replace("2026-02-28", "2026-03-01")
    lines = good.split("\n")
    fields = lines[2].split(",")
    fields[3] = "-" + fields[3]
    lines[2] = ",".join(fields)
    (landing / "retail" / BAD_FILE).write_text("\n".join(lines))
    sales_before = {f.name for f in spark_table(spark_home, "raw.retail_daily_sales")}

    again = run_cli("run", "retail", env=_env(spark_home, LAKEBOX_WAREHOUSE=cluster.url,
                                              LAKEBOX_LANDING=str(landing)), timeout=1200)
    assert again.returncode == 4, again.stderr[-4000:]
    assert BAD_FILE in again.stderr and "total_sales" in again.stderr
    with ops_db(spark_home) as ops:
        rows = ops.execute("select batch_id, meta, status from batches").fetchall()
        failing = ops.execute("select check_name, column_name from dq_results where not passed").fetchall()
    status = {orjson.loads(meta)["file"]: (batch_id, s) for batch_id, meta, s in rows}
    bad_batch, bad_status = status.pop(BAD_FILE)
    assert bad_status == "quarantined" and ("min", "total_sales") in failing
    assert {s for _, s in status.values()} == {"loaded"}
    assert {f.name for f in spark_table(spark_home, "raw.retail_daily_sales")} == sales_before
    assert f"batch-{bad_batch}.parquet" not in sales_before and len(sales_before) == 28
    assert "2026-03-01" not in {str(r[0]) for r in spark_rows(spark_home, "raw.retail_daily_sales")}
    errors = list((spark_home / "lake" / "quarantine" / "retail").rglob(f"{BAD_FILE}.errors.json"))
    assert len(errors) == 1 and orjson.loads(errors[0].read_bytes())["rules"][0]["column"] == "total_sales"
    assert_same_marts(spark_home, duck_home, tuple(MARTS))


# ------------------------------------------------------------------ github_commits and who_gho
WHO_SIZE = {"countries": 40, "years": 10, "seed": 4}  # enough labelled rows to train (min 200)
NEW_PIPELINES = ("github_commits", "who_gho")


@pytest.fixture(scope="module")
def commits_and_who_homes(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`lakebox run github_commits who_gho` (the bundled GitHub stand-in with 300 synthetic
    commits beside commitlint's real history; the GHO stand-in on loopback) on the cluster
    and on DuckDB, in one process each: loads, dbt, and the ML stages (predict, train, drift)."""
    from lakebox.ingest.standin import serve_in_thread
    from lakebox.pipelines.who_gho.api import create_app

    root = tmp_path_factory.mktemp("commits-who")
    spark_home, duck_home = root / "spark", root / "duckdb"
    with serve_in_thread(create_app(**WHO_SIZE)) as who:
        extra = {"LAKEBOX_DEMO_GITHUB_COMMITS": "300", "LAKEBOX_WHO_API_URL": who.url}
        on_spark = run_cli("run", *NEW_PIPELINES, env=_env(spark_home, LAKEBOX_WAREHOUSE=cluster.url, **extra),
                           timeout=1500)
        assert on_spark.returncode == 0, on_spark.stderr[-4000:]
        on_duckdb = run_cli("run", *NEW_PIPELINES, env=_env(duck_home, **extra))
        assert on_duckdb.returncode == 0, on_duckdb.stderr[-3000:]
    return spark_home, duck_home


@pytest.mark.parametrize("pipeline", NEW_PIPELINES)
def test_github_commits_and_who_gho_on_spark_give_the_marts_duckdb_gives(
    commits_and_who_homes: tuple[Path, Path], pipeline: str
) -> None:
    """Every mart (ml.*_features included) row by row; the ML stages ran on Spark too: the
    model became champion and scored as many rows as on DuckDB, and drift was reported."""
    spark_home, duck_home = commits_and_who_homes
    spec = get_spec(pipeline)
    assert_same_marts(spark_home, duck_home, tuple(spec.marts))
    (model,) = [spec.resolve(ref) for ref in spec.ml_models]
    with ops_db(spark_home) as ops:
        stages = {r[0] for r in ops.execute("select stage from stage_runs where pipeline = ? and status = 'success'",
                                            [pipeline])}
    assert {"load", "transform", "predict", "train", "drift"} <= stages
    decisions = [r for r in spark_rows(spark_home, "ml.model_decisions") if r[0] == model.name]
    assert [(r[1], r[2]) for r in decisions] == [("1", "champion")]
    predicted = spark_rows(spark_home, model.predictions_table)
    assert predicted and len(predicted) == len(duckdb_rows(duck_home, model.predictions_table))
    assert {r[0] for r in spark_rows(spark_home, "ml.drift_report")} >= {model.name}
