"""The contract checks, each rule failing on its own kind of bad input."""

import duckdb
import pytest

from lakebox.quality import Column, Contract, check_relation, failed, typed_select

CONTRACT = Contract(
    source="t",
    table="raw.t",
    columns=(
        Column("id", "string", nullable=False),
        Column("amount", "decimal", nullable=False, min=0),
        Column("status", "string", accepted=("a", "b")),
        Column("code", "string", pattern="[A-Z]{3}"),
        Column("ts", "timestamp", nullable=False),
    ),
    unique_key=("id",),
)

GOOD = "select * from (values ('1', 1.5, 'a', 'USD', '2026-01-01T00:00:00Z'), ('2', 0, 'b', 'EUR', '2026-01-02T10:00:00Z')) t(id, amount, status, code, ts)"


def run(sql: str) -> dict:
    con = duckdb.connect()
    con.execute(f"create table batch as {sql}")
    results = check_relation(con, "batch", CONTRACT)
    return {(r.check_name, r.column_name): r for r in failed(results)}, results, con


def test_good_batch_passes_every_check() -> None:
    bad, results, con = run(GOOD)
    assert bad == {}
    names = {r.check_name for r in results}
    assert {"schema_drift", "row_count", "not_null", "min", "accepted_values", "pattern", "unique", "type"} <= names
    rows = con.execute(typed_select("batch", CONTRACT)).fetchall()
    assert str(rows[0][1]) == "1.50" and rows[0][4].isoformat() == "2026-01-01T00:00:00"


@pytest.mark.parametrize(
    ("sql", "rule", "column", "count"),
    [
        ("select * from (values (null, 1.0, 'a', 'USD', '2026-01-01'), ('2', 1.0, 'a', 'USD', '2026-01-01')) t(id, amount, status, code, ts)", "not_null", "id", 1),
        ("select * from (values ('1', -1.0, 'a', 'USD', '2026-01-01')) t(id, amount, status, code, ts)", "min", "amount", 1),
        ("select * from (values ('1', 1.0, 'zz', 'USD', '2026-01-01')) t(id, amount, status, code, ts)", "accepted_values", "status", 1),
        ("select * from (values ('1', 1.0, 'a', 'usd', '2026-01-01')) t(id, amount, status, code, ts)", "pattern", "code", 1),
        ("select * from (values ('1', 1.0, 'a', 'USD', '2026-01-01'), ('1', 2.0, 'a', 'USD', '2026-01-01')) t(id, amount, status, code, ts)", "unique", "id", 1),
        ("select * from (values ('1', 'ten', 'a', 'USD', '2026-01-01')) t(id, amount, status, code, ts)", "type", "amount", 1),
        ("select * from (values ('1', 1.0, 'a', 'USD', 'yesterday')) t(id, amount, status, code, ts)", "type", "ts", 1),
        ("select * from (values ('1', 1.0, 'a', 'USD')) t(id, amount, status, code)", "schema_drift", "ts", 0),
        ("select * from (values ('1', 1.0, 'a', 'USD', '2026-01-01', 1)) t(id, amount, status, code, ts, extra)", "schema_drift", "extra", 0),
        ("select * from (values ('1', true, 'a', 'USD', '2026-01-01')) t(id, amount, status, code, ts)", "schema_drift", "amount", 0),
        ("select * from (values ('1', 1.0, 'a', 'USD', '2026-01-01')) t(id, amount, status, code, ts) where false", "row_count", None, 1),
    ],
    ids=["null-id", "negative", "unknown-status", "pattern", "duplicate", "amount-text", "bad-timestamp",
         "missing-field", "unexpected-field", "retyped-field", "empty"],
)
def test_each_rule_names_rule_column_count_and_sample(sql: str, rule: str, column: str | None, count: int) -> None:
    bad, _, _ = run(sql)
    assert (rule, column) in bad, bad.keys()
    result = bad[(rule, column)]
    assert result.failing_rows == count
    if count and rule != "row_count":
        assert result.sample, "a failing rule carries sample rows"
    assert result.detail


def test_renamed_field_is_missing_plus_unexpected() -> None:
    bad, _, _ = run("select * from (values ('1', 1.0, 'a', 'USD', '2026-01-01')) t(id, order_amount, status, code, ts)")
    assert ("schema_drift", "amount") in bad and ("schema_drift", "order_amount") in bad
    assert "missing" in bad[("schema_drift", "amount")].detail
    assert "unexpected" in bad[("schema_drift", "order_amount")].detail


def test_raw_ddl_is_portable_and_has_lineage() -> None:
    ddl = CONTRACT.raw_ddl()
    assert "numeric(18,2)" in ddl and "double " not in ddl
    assert "batch_id varchar not null" in ddl and "lake_path varchar not null" in ddl
    assert "| amount | decimal | no | >= 0 |" in CONTRACT.to_markdown()


def test_batches_checked_together_get_the_results_each_gets_alone() -> None:
    """check_groups (several small batches of one shape in one table) must say exactly what
    check_relation says of each batch alone: counts, samples, and an empty batch's row count."""
    from lakebox.quality.checks import check_groups

    con = duckdb.connect()
    con.execute("create table pages (id varchar, amount decimal(10, 2), status varchar, code varchar, ts varchar, "
                "no integer)")
    con.execute("""insert into pages values
        ('1', 1.5, 'a', 'USD', '2026-01-01T00:00:00Z', 1), ('2', 0, 'b', 'EUR', '2026-01-02', 1),
        (null, 1.0, 'a', 'USD', '2026-01-01', 2), ('2', -1.0, 'zz', 'usd', 'yesterday', 2),
        ('1', 1.0, 'a', 'USD', '2026-01-01', 3), ('1', 2.0, 'a', 'USD', '2026-01-01', 3),
        ('1', 1.0, 'a', 'USD', '2026-01-01', 5)""")  # batch 4 is an empty page
    grouped = check_groups(con, "pages", CONTRACT, "no", [1, 2, 3, 4, 5])
    for number in (1, 2, 3, 4, 5):
        con.execute(f"create or replace table alone as select * exclude (no) from pages where no = {number}")
        assert grouped[number] == check_relation(con, "alone", CONTRACT), number
    assert not failed(grouped[1]) and not failed(grouped[5])
    assert {(r.check_name, r.column_name) for r in failed(grouped[2])} == {
        ("not_null", "id"), ("min", "amount"), ("accepted_values", "status"), ("pattern", "code"), ("type", "ts")}
    assert [(r.check_name, r.failing_rows) for r in failed(grouped[3])] == [("unique", 1)]
    assert [r.check_name for r in failed(grouped[4])] == ["row_count"]
