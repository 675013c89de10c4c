"""A few Python rows into DuckDB as columns (the ops ledger's and the retail gate's path)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from lakebox.warehouse.columns import temp_table


def test_columns_become_typed_rows_in_order_with_nulls() -> None:
    con = duckdb.connect()
    when = dt.datetime(2026, 12, 1, 12, 0)
    temp_table(con, "rows", {
        "id": ("varchar", ["b", "a", "c"]),
        "n": ("bigint", [3, None, 1]),
        "at": ("timestamp", [when, when + dt.timedelta(microseconds=1), None]),
        "ok": ("boolean", [True, False, None]),
        "note": ("varchar", [None, None, None]),
    })
    assert con.execute("select * from rows").fetchall() == [
        ("b", 3, when, True, None), ("a", None, when + dt.timedelta(microseconds=1), False, None),
        ("c", 1, None, None, None)]
    types = dict(con.execute("select column_name, data_type from information_schema.columns "
                             "where table_name = 'rows'").fetchall())
    assert types == {"id": "VARCHAR", "n": "BIGINT", "at": "TIMESTAMP", "ok": "BOOLEAN", "note": "VARCHAR"}


def test_no_rows_is_an_empty_table_and_a_second_call_replaces_it() -> None:
    con = duckdb.connect()
    temp_table(con, "rows", {"id": ("varchar", ["x"])})
    temp_table(con, "rows", {"id": ("varchar", [])})
    assert con.execute("select count(*) from rows").fetchone() == (0,)


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        temp_table(duckdb.connect(), "rows", {"a": ("bigint", [1, 2]), "b": ("bigint", [1])})
