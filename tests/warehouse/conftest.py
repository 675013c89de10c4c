"""Spark as the warehouse, for the test_spark_* files: one standalone cluster (a master and
two 1-core workers on loopback) per test process, started by the first test that asks for
it and shared by every Spark test that process runs; and the helpers that compare a Spark
home's marts with a DuckDB home's.

Each xdist worker starts its own cluster rather than sharing one across workers: a
standalone master gives an application every free core, so two workers' runs on one
cluster would wait for each other, and the killed-worker test counts the cluster's cores
and kills a worker, which must not hit another test's run.

Spark's tables are read back from their Parquet files (`<dir>/<schema>.db/<table>/*.parquet`,
what Spark itself lists), so the checks need no second Spark session.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import _LAKEBOX_VARS, service_missing

# Every JVM of the tests' Spark (daemons, executors, drivers) lives for a minute or two on
# a few thousand rows: C1 alone compiles enough, and one GC thread is plenty. Measured on
# cluster start + `lakebox run orders` (2 cores, busy machine): 54 CPU-s with the JVM's
# defaults, 25 with these. The answers are the same; only compile and GC work is saved.
JVM_OPTIONS = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


def spark_reason() -> str | None:
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"pyspark or dbt-spark not installed ({exc}); pip install 'lakebox[spark]'"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java on PATH (Spark needs Java 17)"
    return None


def need_spark() -> None:
    """Skip (or fail, with LAKEBOX_REQUIRE_SPARK=1) without pyspark, dbt-spark and Java."""
    reason = spark_reason()
    if reason:
        service_missing(reason, "LAKEBOX_REQUIRE_SPARK")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A standalone master and two 1-core workers on 127.0.0.1 for this test process."""
    need_spark()
    from lakebox.warehouse.spark_cluster import LocalCluster

    with LocalCluster(tmp_path_factory.mktemp("spark-cluster"), workers=2, env=JVM_OPTIONS) as running:
        yield running


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `lakebox` command on `home`, nothing of the test's own (its Spark
    driver with the tests' JVM options)."""
    env = {k: v for k, v in os.environ.items() if k not in _LAKEBOX_VARS}
    return {**env, "LAKEBOX_HOME": str(home), "LAKEBOX_CONFIG": "off",
            "LAKEBOX_HTTP_BACKOFF": "0.01", "LAKEBOX_HTTP_MAX_DELAY": "0.2", **JVM_OPTIONS, **extra}


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
