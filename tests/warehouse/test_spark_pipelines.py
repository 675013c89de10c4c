"""The bundled pipelines on a real standalone Spark cluster, in one Spark home loaded by one
`lakebox run orders retail github_commits who_gho` (one Spark application: its executors
warm up once for all four; a cold start costs more than any one pipeline's loads): the
marts DuckDB gives, ML stages included; a batch is loaded once even when the ledger lost its
mark after the data was written, and what a SIGKILLed load staged is removed by the next
run; a worker killed in the middle of a dbt build is survived; the gate keeps a bad file out.

The parity tests come first; each later test changes one pipeline's part of the home and
leaves its marts right for the next. The killed-worker test comes last: its Spark driver is
this test process's, whose JVM keeps the home's Derby metastore open until the session ends,
so no `lakebox` command could open the home after it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakebox.pipelines import get_spec
from tests.conftest import run_cli
from tests.warehouse.conftest import (
    JVM_OPTIONS,
    assert_same_marts,
    duckdb_rows,
    env_for,
    ops_db,
    spark_rows,
    spark_table,
)

# The set-up runs four pipelines on Spark: longer than the suite's per-test limit on a busy machine
pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(2400)]

PIPELINES = ("orders", "retail", "github_commits", "who_gho")
ORDERS = 2000
ORDER_MARTS = ("staging.stg_orders", "analytics.daily_order_metrics")
RETAIL_MARTS = tuple(get_spec("retail").marts)
BAD_FILE = "daily_sales_2026-03-01.csv"
WHO_SIZE = {"countries": 40, "years": 10, "seed": 4}  # enough labelled rows to train (min 200)
NEW_PIPELINES = ("github_commits", "who_gho")
# `lakebox run ...` that dies (SIGKILL) when a transaction that staged a batch file commits,
# before the rename; transactions with nothing staged (run and stage records) go through
KILLED_BEFORE_RENAME = ("import os, signal; from lakebox.warehouse.spark import SparkWarehouse; "
                        "SparkWarehouse._publish = lambda self: self._staged and os.kill(os.getpid(), signal.SIGKILL); "
                        "from lakebox.cli import main; main()")


class Homes:
    def __init__(self, root: Path, cluster_url: str) -> None:
        self.spark, self.duckdb, self.landing = root / "spark", root / "duckdb", root / "landing"
        self.cluster_url = cluster_url

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        return env_for(home, LAKEBOX_DEMO_ORDERS=str(ORDERS), LAKEBOX_LANDING=str(self.landing),
                       LAKEBOX_DEMO_GITHUB_COMMITS="300", **extra)

    def spark_env(self) -> dict[str, str]:
        return self.env(self.spark, LAKEBOX_WAREHOUSE=self.cluster_url)


@pytest.fixture(scope="module")
def homes(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Homes:
    """The four pipelines on the cluster and on DuckDB, in one process each: 2k orders from
    the bundled API; three stores × February's retail drops; the bundled GitHub stand-in with
    300 synthetic commits beside commitlint's real history; the GHO stand-in on loopback.
    Loads, dbt, and the ML stages (predict, train, drift)."""
    from lakebox.ingest.standin import serve_in_thread
    from lakebox.pipelines.retail.generator import generate_drops
    from lakebox.pipelines.who_gho.api import create_app

    made = Homes(tmp_path_factory.mktemp("pipelines"), cluster.url)
    generate_drops(str(made.landing / "retail"), stores=3, months=1, seed=3, start="2026-02-01")
    with serve_in_thread(create_app(**WHO_SIZE)) as who:
        on_spark = run_cli("run", *PIPELINES, env={**made.spark_env(), "LAKEBOX_WHO_API_URL": who.url}, timeout=2000)
        assert on_spark.returncode == 0, on_spark.stderr[-4000:]
        on_duckdb = run_cli("run", *PIPELINES, env=made.env(made.duckdb, LAKEBOX_WHO_API_URL=who.url))
        assert on_duckdb.returncode == 0, on_duckdb.stderr[-3000:]
    return made


def test_orders_on_spark_give_the_marts_duckdb_gives(homes: Homes) -> None:
    assert_same_marts(homes.spark, homes.duckdb, ORDER_MARTS)
    assert sum(r[1] for r in spark_rows(homes.spark, "analytics.daily_order_metrics")) == ORDERS
    # Spark's own layout: one Parquet file per loaded batch, named by its id
    with ops_db(homes.spark) as ops:
        loaded = [r[0] for r in ops.execute("select batch_id from batches where source = 'orders' and status = 'loaded'")]
        stages = {r[0] for r in ops.execute("select stage from stage_runs where pipeline = 'orders' and status = 'success'")}
    assert [f.name for f in spark_table(homes.spark, "raw.orders")] == sorted(f"batch-{b}.parquet" for b in loaded)
    assert {"fetch", "load", "transform", "snapshot"} <= stages


def test_retail_on_spark_gives_the_marts_duckdb_gives(homes: Homes) -> None:
    assert_same_marts(homes.spark, homes.duckdb, RETAIL_MARTS)


@pytest.mark.parametrize("pipeline", NEW_PIPELINES)
def test_github_commits_and_who_gho_on_spark_give_the_marts_duckdb_gives(
    homes: Homes, pipeline: str
) -> None:
    """Every mart (ml.*_features included) row by row; the ML stages ran on Spark too: the
    model became champion and scored as many rows as on DuckDB, and drift was reported."""
    spark_home, duck_home = homes.spark, homes.duckdb
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


def test_a_batch_whose_ledger_mark_was_lost_is_loaded_once(homes: Homes) -> None:
    """The state a crash between publishing a batch's file and committing its ledger mark
    leaves: the file is in the table, the ledger says 'landed'. Then a run is killed after
    staging the batch again. The next run removes the staged leftover and loads the batch
    again; its file is replaced, not doubled."""
    spark_home = homes.spark
    raw_before = spark_rows(spark_home, "raw.orders")
    files_before = [f.name for f in spark_table(spark_home, "raw.orders")]
    with ops_db(spark_home) as ops:
        ops.execute("update batches set status = 'landed', loaded_at = null where source = 'orders'")
    # a run killed (SIGKILL) after staging the batch's file, before renaming it into the table
    staging = spark_home / "spark-warehouse" / "raw.db" / "orders" / ".lakebox-staging"
    crashed = subprocess.run([sys.executable, "-c", KILLED_BEFORE_RENAME, "run", "orders"], env=homes.spark_env(),
                             capture_output=True, text=True, timeout=900)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-4000:]
    assert len(list(staging.glob("*.parquet"))) == 1
    assert [f.name for f in spark_table(spark_home, "raw.orders")] == files_before
    again = run_cli("run", "orders", "--full-refresh", env=homes.spark_env(), timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    assert [f.name for f in spark_table(spark_home, "raw.orders")] == files_before
    assert len(spark_rows(spark_home, "raw.orders")) == len(raw_before) == ORDERS
    with ops_db(spark_home) as ops:
        assert {r[0] for r in ops.execute("select status from batches where source = 'orders'")} == {"loaded"}
        runs = [r[0] for r in ops.execute("select status from pipeline_runs where pipeline = 'orders' "
                                          "order by started_at")]
    assert runs == ["success", "failed", "success"]  # the killed run closed as interrupted
    assert not list(staging.glob("*"))  # the killed run's staged file is gone
    assert_same_marts(spark_home, homes.duckdb, ORDER_MARTS)


def test_the_gate_keeps_a_bad_file_out_of_spark(homes: Homes) -> None:
    """A new day's sales file with a negative sale: quarantined with its rule and column,
    none of its rows in Spark, the run ends partial (exit 4) with the item open, and the
    marts stay as they were."""
    spark_home, landing = homes.spark, homes.landing
    good = (landing / "retail" / "daily_sales_2026-02-28.csv").read_text().replace("2026-02-28", "2026-03-01")
    lines = good.split("\n")
    fields = lines[2].split(",")
    fields[3] = "-" + fields[3]
    lines[2] = ",".join(fields)
    (landing / "retail" / BAD_FILE).write_text("\n".join(lines))
    sales_before = {f.name for f in spark_table(spark_home, "raw.retail_daily_sales")}

    again = run_cli("run", "retail", env=homes.spark_env(), timeout=1200)
    assert again.returncode == 4, again.stderr[-4000:]
    assert BAD_FILE in again.stderr and "total_sales" in again.stderr
    with ops_db(spark_home) as ops:
        rows = ops.execute("select batch_id, meta, status from batches where source = 'retail'").fetchall()
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
    assert_same_marts(spark_home, homes.duckdb, RETAIL_MARTS)


# ------------------------------------------------------------------ lineage and the catalog on Spark (issue 22)
# Spark has no information_schema: columns are read off an empty select. These read the home
# the pipelines ran in above (one cluster for the whole file), as `lakebox` processes: they run
# before the test below, whose in-process Spark session keeps the home's embedded metastore.
MART = "analytics.daily_order_metrics"


def test_on_spark_models_carry_their_columns_and_column_lineage(homes: Homes) -> None:
    import json

    events = [json.loads(line) for line in (homes.spark / "lineage" / "events.jsonl").read_text().splitlines()]
    done = [e for e in events if e["job"]["name"] == f"orders.transform.{MART}" and e["eventType"] == "COMPLETE"]
    assert done, "no COMPLETE event of the orders mart's build"
    [out] = done[0]["outputs"]
    assert "total_amount" in {f["name"] for f in out["facets"]["schema"]["fields"]}
    assert [f["field"] for f in out["facets"]["columnLineage"]["fields"]["total_amount"]["inputFields"]] == ["amount"]
    load = [e for e in events if e["job"]["name"] == "orders.load" and e["eventType"] == "COMPLETE"]
    assert [d["name"] for d in load[0]["outputs"]] == ["raw.orders"], "the raw table found without information_schema"

    up = run_cli("lineage", f"{MART}.total_amount", env=homes.spark_env(), timeout=300)
    assert up.returncode == 0, up.stderr[-3000:]
    assert "    <- raw.orders.amount  [TRANSFORMATION]" in up.stdout.splitlines()


def test_on_spark_the_catalog_lists_every_table_with_its_types(homes: Homes, tmp_path: Path) -> None:
    import re

    site = tmp_path / "site"
    result = run_cli("catalog", "--export", str(site), env=homes.spark_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    pages: dict[str, Any] = {p.name: p.read_text() for p in site.glob("*.html")}
    assert {"index.html", "raw.orders.html", "staging.stg_orders.html", f"{MART}.html"} <= set(pages)
    typed = re.search(r"<tr id='total_amount'><td>total_amount</td><td>([^<]*)</td>", pages[f"{MART}.html"])
    assert typed is not None and typed.group(1).startswith("decimal"), "the column's type, read off an empty select"


def test_a_project_model_refs_a_bundled_mart_on_spark(homes: Homes, tmp_path: Path) -> None:
    """Issue 19: a project's own pipeline whose model refs the bundled daily_order_metrics, run
    on the cluster in the home the bundled pipelines built (one dbt project for both)."""
    from tests.test_project import MINE, write_project

    project = write_project(tmp_path / "proj", "", {"mine": MINE})
    env = {**homes.spark_env(), "LAKEBOX_PROJECT": str(project)}
    run = run_cli("run", "mine", env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    [(orders, amount, days)] = spark_rows(homes.spark, "analytics.weekly_orders")
    daily = spark_rows(homes.spark, "analytics.daily_order_metrics")
    assert orders == sum(r[1] for r in daily) and days == len(daily) > 0
    assert round(float(amount), 2) == round(sum(float(r[2]) for r in daily), 2)


def test_a_worker_killed_during_a_dbt_build_is_survived(
    homes: Homes, cluster: Any, monkeypatch: pytest.MonkeyPatch
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

    for name, value in JVM_OPTIONS.items():  # this process's own Spark driver
        monkeypatch.setenv(name, value)
    extra = cluster.add_worker()
    settings = Settings.load(env=env_for(homes.spark, LAKEBOX_WAREHOUSE=cluster.url), cwd=homes.spark)
    killed: list[str] = []

    def kill_at_second_model(event: Any) -> None:
        if event.info.name == "NodeStart" and event.data.node_info.unique_id.endswith(".daily_order_metrics"):
            cluster.kill(extra)
            killed.append(event.data.node_info.unique_id)

    class Runner(dbt.cli.main.dbtRunner):
        def __init__(self, *args: Any, callbacks: list[Any] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, callbacks=[*(callbacks or []), kill_at_second_model], **kwargs)  # lakebox's own too

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
    assert_same_marts(homes.spark, homes.duckdb, ORDER_MARTS)
