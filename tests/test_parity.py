"""The orders pipeline end to end on PostgreSQL and S3, and the same orders giving the
same marts on DuckDB and on PostgreSQL, row by row. Both tests share one PostgreSQL+S3
run (dbt is the slow part)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import _LAKEBOX_VARS, run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ORDERS = 2000
TABLES = {
    "staging.stg_orders": ("order_id", ("order_id", "customer_id", "amount", "currency", "status", "created_at",
                                        "updated_at", "order_date", "_batch_id")),
    "analytics.daily_order_metrics": ("order_date", ("order_date", "total_orders", "total_amount", "avg_amount",
                                                     "unique_customers", "cancelled_orders", "refunded_amount")),
}


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LAKEBOX_VARS}
    return {**env, "LAKEBOX_HOME": str(home), "LAKEBOX_HTTP_BACKOFF": "0.01", "LAKEBOX_HTTP_MAX_DELAY": "0.2",
            "LAKEBOX_DEMO_ORDERS": str(ORDERS)}


@pytest.fixture(scope="module")
def remote_run(postgres_admin_dsn: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[dict[str, str], str, str]]:
    """`lakebox run orders` once on a fresh database and bucket; yields (env, pg_url, bucket)."""
    import boto3

    database, bucket = f"lakebox_t_{uuid.uuid4().hex[:12]}", f"lakebox-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_admin_dsn, autocommit=True) as con:
        con.execute(f'create database "{database}"')
    pg_url = postgres_admin_dsn.rsplit("/", 1)[0] + f"/{database}"
    aws = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
           "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing-secret").create_bucket(Bucket=bucket)
    env = {**_base_env(tmp_path_factory.mktemp("remote") / "home"), **aws, "LAKEBOX_WAREHOUSE": pg_url,
           "LAKEBOX_LAKE": f"s3://{bucket}/lake"}
    try:
        first = run_cli("run", "orders", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        yield env, pg_url, bucket
    finally:
        with psycopg.connect(postgres_admin_dsn, autocommit=True) as con:
            con.execute(f'drop database if exists "{database}" with (force)')


def test_orders_end_to_end_on_postgres_and_s3(remote_run: tuple[dict[str, str], str, str]) -> None:
    import boto3

    env, pg_url, bucket = remote_run
    with psycopg.connect(pg_url) as con:
        raw_rows = con.execute("select count(*) from raw.orders").fetchone()[0]
        assert raw_rows == ORDERS
        assert con.execute("select count(*) from staging.stg_orders").fetchone()[0] == ORDERS
        assert con.execute("select sum(total_orders) from analytics.daily_order_metrics").fetchone()[0] == ORDERS
        assert con.execute("select count(*) from ops.batches where status = 'loaded'").fetchone()[0] >= 1
        assert con.execute("select count(*) from ops.dq_results where passed").fetchone()[0] > 0
        assert con.execute("select count(*) from ops.source_state").fetchone()[0] >= 1
        stages = {r[0] for r in con.execute("select stage from ops.stage_runs where status = 'success'")}
        assert {"fetch", "load", "transform", "snapshot"} <= stages

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.startswith("lake/raw/orders/") and k.endswith(".json") and "manifest" not in k for k in keys)
    assert any(k.startswith("lake/snapshots/daily_order_metrics/") for k in keys)
    assert not any(k.startswith("lake/_lakebox/") for k in keys)  # the conditional-write probe cleans up

    second = run_cli("run", "orders", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    with psycopg.connect(pg_url) as con:
        assert con.execute("select count(*) from raw.orders").fetchone()[0] == raw_rows  # nothing new, nothing added
        assert con.execute("select sum(total_orders) from analytics.daily_order_metrics").fetchone()[0] == ORDERS
        runs = con.execute("select status from ops.pipeline_runs order by started_at").fetchall()
        assert runs == [("success",), ("success",)]
    status = run_cli("status", env=env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("success") == 2 and "postgresql://" in status.stdout


def _normal(value: Any) -> Any:
    if isinstance(value, (Decimal, float)):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def _rows(fetch: Any, table: str) -> list[tuple[Any, ...]]:
    key, columns = TABLES[table]
    rows = fetch(f"select {', '.join(columns)} from {table} order by {key}")
    return [tuple(_normal(v) for v in row) for row in rows]


def test_marts_are_identical_on_duckdb_and_postgresql(remote_run: tuple[dict[str, str], str, str],
                                                      tmp_path: Path) -> None:
    import duckdb

    _, pg_url, _ = remote_run
    duck_file = tmp_path / "parity.duckdb"
    on_duckdb = run_cli("run", "orders", env={**_base_env(tmp_path / "home"), "LAKEBOX_WAREHOUSE": str(duck_file)})
    assert on_duckdb.returncode == 0, on_duckdb.stderr[-3000:]

    with duckdb.connect(str(duck_file), read_only=True) as duck, psycopg.connect(pg_url) as pg:
        for table in TABLES:
            from_duckdb = _rows(lambda sql: duck.execute(sql).fetchall(), table)
            from_postgres = _rows(lambda sql: pg.execute(sql).fetchall(), table)
            assert len(from_duckdb) > 10
            mismatched = [(a, b) for a, b in zip(from_duckdb, from_postgres, strict=True) if a != b]
            assert not mismatched, f"{table}: {len(mismatched)} rows differ, e.g. {mismatched[:3]}"
