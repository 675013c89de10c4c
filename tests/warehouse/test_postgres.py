"""The PostgreSQL warehouse against a real server: SQL, nested transactions, COPY loads
(binary and CSV) with every contract type. The orders pipeline end to end on PostgreSQL
and S3 is in tests/test_parity.py, which shares that run with the parity check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from lakebox.errors import WarehouseError
from lakebox.warehouse import ops
from lakebox.warehouse.postgres import PostgresWarehouse, translate_placeholders

pytestmark = pytest.mark.postgres

TYPED_DDL = """create table raw.typed (
    s varchar, n numeric(18,2), i bigint, k integer, f double precision, b boolean, d date, t timestamp,
    batch_id varchar not null)"""
COLUMNS = ("s", "n", "i", "k", "f", "b", "d", "t", "batch_id")
SOURCE_ROWS = """select * from (values
    ('ORD-0000001', 12.34::decimal(18,2), 1::bigint, 7::integer, 1.5::double, true, date '2026-03-02',
        timestamp '2026-03-02 01:02:03.456789', 'b1'),
    ('', -0.05::decimal(18,2), -9007199254740993::bigint, -1::integer, -2.25e-3::double, false, date '1999-12-31',
        timestamp '1970-01-01 00:00:00', 'b1'),
    ('naïve, "quoted"\nline', 9999999999999999.99::decimal(18,2), 0::bigint, 0::integer, 0.0::double, false,
        date '2000-01-01', timestamp '2000-01-01 00:00:00', 'b1'),
    (null, null, null, null, null, null, null, null, 'b1'),
    ('x', 0::decimal(18,2), 42::bigint, 2147483647::integer, 1e300::double, true, date '2100-06-30',
        timestamp '2099-12-31 23:59:59.999999', 'b1')
) as v(s, n, i, k, f, b, d, t, batch_id)"""


@pytest.fixture
def warehouse(pg_url: str):
    wh = PostgresWarehouse(pg_url, env={})
    wh.ensure_schemas()
    yield wh
    wh.close()


def test_placeholders_become_psycopg_style() -> None:
    sql = "select '?', \"a?\", x from t where a = ? and b like '50%' and c = ?"
    assert translate_placeholders(sql) == "select '?', \"a?\", x from t where a = %s and b like '50%%' and c = %s"


def test_describe_redacts_the_password(pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:hunter22@")
    assert PostgresWarehouse(url, env={}).describe() == url.replace("hunter22", "***")


def test_schemas_and_ops_tables_exist_and_reopening_is_harmless(warehouse: PostgresWarehouse, pg_url: str) -> None:
    warehouse.ensure_schemas()
    names = {r[0] for r in warehouse.query("select nspname from pg_namespace")}
    assert {"raw", "staging", "analytics", "ml", "ops"} <= names
    tables = {r[0] for r in warehouse.query("select table_name from information_schema.tables where table_schema = 'ops'")}
    assert tables == {"pipeline_runs", "stage_runs", "dq_results", "batches", "source_state", "quarantine"}


def test_statements_outside_a_transaction_commit_at_once(warehouse: PostgresWarehouse, pg_url: str) -> None:
    ops.start_run(warehouse, "r1", "orders")
    with psycopg.connect(pg_url) as other:
        assert other.execute("select status from ops.pipeline_runs where run_id = 'r1'").fetchall() == [("running",)]
    assert ops.recent_runs(warehouse, 5)[0][:3] == ("r1", "orders", "running")


def test_nested_transactions_join_the_outer_one(warehouse: PostgresWarehouse, pg_url: str) -> None:
    with pytest.raises(RuntimeError):
        with warehouse.transaction():
            warehouse.execute("insert into ops.source_state values (?, ?, ?, ?)", ["s", "k0", "v", ops.utcnow()])
            ops.set_state(warehouse, "s", "k1", "v1")  # opens its own transaction inside
            raise RuntimeError("crash after the inner block")
    assert warehouse.query("select count(*) from ops.source_state") == [(0,)]
    with warehouse.transaction():
        ops.set_state(warehouse, "s", "k1", "v1")
        ops.set_state(warehouse, "s", "k1", "v2")
    assert ops.get_state(warehouse, "s", "k1") == "v2"
    with psycopg.connect(pg_url) as other:
        assert other.execute("select value from ops.source_state").fetchall() == [("v2",)]


def test_sql_errors_name_the_warehouse_and_the_statement(warehouse: PostgresWarehouse) -> None:
    with pytest.raises(WarehouseError, match=r"PostgreSQL at postgresql://.*relation \"nope\" does not exist.*in: select"):
        warehouse.query("select * from nope")
    assert warehouse.query("select 1") == [(1,)]  # the connection is still usable


@pytest.mark.parametrize("fmt", ["binary", "csv"])
def test_copy_load_keeps_every_type_exactly(warehouse: PostgresWarehouse, fmt: str, monkeypatch) -> None:
    import lakebox.warehouse.postgres_copy as pgcopy

    if fmt == "csv":
        monkeypatch.setattr(pgcopy, "binary_encoders", lambda *a: None)
    warehouse.execute(TYPED_DDL)
    expected = warehouse.scratch().execute(SOURCE_ROWS + " order by batch_id, i nulls first").fetchall()
    with warehouse.transaction():
        assert warehouse.load_from_scratch(SOURCE_ROWS, "raw.typed", COLUMNS) == 5
    got = warehouse.query("select * from raw.typed order by batch_id, i nulls first")
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    assert isinstance(got[0][1], (Decimal, type(None)))


def test_copy_chooses_binary_and_falls_back_to_csv_for_unknown_pairs(warehouse: PostgresWarehouse) -> None:
    import pyarrow as pa

    from lakebox.warehouse.postgres_copy import binary_encoders

    assert binary_encoders([pa.string(), pa.decimal128(18, 2)], ["character varying", "numeric"]) is not None
    assert binary_encoders([pa.decimal128(38, 2)], ["numeric"]) is None
    warehouse.execute("create table raw.wide (n numeric(38,2), d date)")
    select = "select 123456789012345678901234.56::decimal(38,2) as n, '2026-01-02' as d"
    with warehouse.transaction():
        assert warehouse.load_from_scratch(select, "raw.wide", ["n", "d"]) == 1
    assert warehouse.query("select * from raw.wide") == [(Decimal("123456789012345678901234.56"), dt.date(2026, 1, 2))]


def test_many_rows_of_the_orders_shape_load_in_batches(warehouse: PostgresWarehouse) -> None:
    from lakebox.declarative.config import load_config
    from lakebox.declarative.load import contract_for
    from lakebox.pipelines import orders

    config = load_config(Path(orders.__file__).parent)
    CONTRACT = contract_for(config, config.source.resources[0])
    warehouse.execute(CONTRACT.raw_ddl())
    select = (
        "select 'ORD-' || i as order_id, 'CUST-' || (i % 97) as customer_id, (i % 1000 / 100)::double as amount, "
        "'USD' as currency, ['placed','paid','shipped','cancelled','refunded'][i % 5 + 1] as status, "
        "timestamp '2026-03-02' + to_seconds(i) as created_at, timestamp '2026-03-02' + to_seconds(i) as updated_at, "
        "'b' as batch_id, timestamp '2026-11-22' as ingested_at, 'raw/orders/x.json' as lake_path from range(150000) t(i)"
    )
    with warehouse.transaction():
        assert warehouse.load_from_scratch(select, CONTRACT.table, CONTRACT.raw_columns) == 150_000
    total = "cast(sum(amount) as numeric(18, 2))"  # amount is a double: sums compared to the cent
    assert warehouse.query(f"select count(*), count(distinct status), {total}, max(order_id) from raw.orders") == [
        (150_000, 5, warehouse.scratch().execute(f"select {total} from ({select})").fetchone()[0], "ORD-99999")]


def test_a_failed_load_leaves_nothing(warehouse: PostgresWarehouse) -> None:
    warehouse.execute(TYPED_DDL)
    with pytest.raises(RuntimeError):
        with warehouse.transaction():
            warehouse.load_from_scratch(SOURCE_ROWS, "raw.typed", COLUMNS)
            ops.set_state(warehouse, "s", "k", "v")
            raise RuntimeError("crash before commit")
    assert warehouse.query("select count(*) from raw.typed") == [(0,)]
    assert warehouse.query("select count(*) from ops.source_state") == [(0,)]
    bad = "select 'x' as s, null as n, null as i, null as k, null as f, null as b, null as d, null as t, null as batch_id"
    with pytest.raises(WarehouseError, match="batch_id"):
        with warehouse.transaction():
            warehouse.load_from_scratch(bad, "raw.typed", COLUMNS)
    assert warehouse.query("select count(*) from raw.typed") == [(0,)]


def test_query_arrow_types_match_duckdb(warehouse: PostgresWarehouse) -> None:
    import pyarrow as pa

    warehouse.execute(TYPED_DDL)
    with warehouse.transaction():
        warehouse.load_from_scratch(SOURCE_ROWS, "raw.typed", COLUMNS)
    table = warehouse.query_arrow("select * from raw.typed where i = ?", [1])
    assert table.schema.types == [pa.string(), pa.decimal128(18, 2), pa.int64(), pa.int32(), pa.float64(), pa.bool_(),
                                  pa.date32(), pa.timestamp("us"), pa.string()]
    assert table.num_rows == 1 and table.column("n")[0].as_py() == Decimal("12.34")
    assert warehouse.query_arrow("select * from raw.typed where false").num_rows == 0


def test_release_closes_and_the_next_call_reconnects(warehouse: PostgresWarehouse) -> None:
    warehouse.query("select 1")
    warehouse.release()
    assert warehouse._con is None
    assert warehouse.query("select 2") == [(2,)]


@pytest.mark.parametrize(("server_says", "expected"), [
    ('connection to server at "db", port 5432 failed: FATAL:  password authentication failed for user "app"',
     "PostgreSQL at postgresql://app:***@db:5432/wh refused the login of user 'app': wrong password; "
     "check the password in LAKEBOX_WAREHOUSE or PGPASSWORD"),
    ('connection to server at "db" (10.0.0.1), port 5432 failed: timeout expired',
     "cannot connect to PostgreSQL at postgresql://app:***@db:5432/wh: no answer within the connect timeout; "
     "is the host reachable? check LAKEBOX_WAREHOUSE"),
    ('could not translate host name "db" to address: Name or service not known',
     "cannot connect to PostgreSQL at postgresql://app:***@db:5432/wh: could not translate host name \"db\" to "
     "address: Name or service not known; check LAKEBOX_WAREHOUSE"),
])
def test_login_failures_the_test_server_cannot_produce(server_says: str, expected: str) -> None:
    """The test server trusts every local login, so wrong passwords are checked on the message alone."""
    wh = PostgresWarehouse("postgresql://app:pw-not-shown@db:5432/wh", env={})
    assert wh._connect_message(psycopg.OperationalError(server_says)) == expected


def test_a_batch_that_fails_while_streaming_leaves_nothing(warehouse: PostgresWarehouse) -> None:
    warehouse.execute("create table raw.streamed (i bigint)")
    failing = "select case when i < 100000 then i else error('bad value at ' || i) end as i from range(200000) t(i)"
    with pytest.raises(WarehouseError, match="could not read the batch to load into raw.streamed: .*bad value"):
        with warehouse.transaction():
            warehouse.load_from_scratch(failing, "raw.streamed", ["i"])
    assert warehouse.query("select count(*) from raw.streamed") == [(0,)]
    with warehouse.transaction():  # the connection and the scratch DuckDB are still usable
        assert warehouse.load_from_scratch("select 1::bigint as i", "raw.streamed", ["i"]) == 1
