"""Reading landed files of a declarative files pipeline (`lakebox.declarative.files.reader_for`):
CSV (a `Country Name`-style header, `;`, quoted line breaks, headerless), JSON lines and
Parquet as rows with dlt's normalised column names and each row's line or record number,
which the contract checks report; with DuckDB's scratch on a DuckDB warehouse and on
PostgreSQL (where the rows are then loaded with COPY). Real lake, DuckDB and PostgreSQL."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lakebox.declarative import files
from lakebox.declarative.config import PipelineConfig
from lakebox.quality.checks import check_relation
from lakebox.quality.contract import Column, Contract
from lakebox.quality.gate import row_numbers
from lakebox.stage import RunContext
from tests.declarative.files_standins import EVENTS, SALES_1, drop, files_context, parquet_bytes

STORES_GOOD = b"1,Lisbon,PT\n2,Porto,PT\n"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunContext, PipelineConfig]]:
    """One home for the module's reads (on DuckDB): a landed file is read as often as asked."""
    with files_context(tmp_path_factory.mktemp("reader")) as found:
        yield found


def landed(ctx: RunContext, config: PipelineConfig, resource: str, name: str, data: bytes) -> str:
    """`data` dropped as `name` and landed; the lake URI of its batch."""
    drop(config, name, data)
    files.land(ctx, config)
    (key,) = ctx.warehouse.query("select lake_path from ops.batches where source = ? and meta like ?",
                                 [f"shop_{resource}", f'%"file":"{name}"%'])[0]
    return str(ctx.lake.uri(key))


def read(ctx: RunContext, config: PipelineConfig, resource: str, uri: str) -> tuple[list[tuple[str, str]], list[Any]]:
    """(column names and DuckDB types, rows) of one landed file, as the loader reads it."""
    con = ctx.warehouse.scratch()
    ctx.lake.register_with(con)
    reader = files.reader_for(config, next(r for r in config.source.resources if r.name == resource))
    reader.prepare(con, [uri])
    cur = con.execute(reader.select_sql(con, uri))
    return [(d[0], str(d[1])) for d in cur.description], cur.fetchall()


def test_csv_columns_are_normalised_text_and_each_row_names_its_line(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    columns, rows = read(ctx, config, "sales", landed(ctx, config, "sales", "sales_2024-01-01.csv", SALES_1))
    assert columns == [("country_name", "VARCHAR"), ("_2024_total", "VARCHAR"), ("note", "VARCHAR"),
                       ("_line", "BIGINT")]
    # the header is line 1; Spain's quoted note spans lines 3-4, so France is on line 5
    assert rows == [("Portugal", "10.5", "plain", 2), ("Spain", "7", "two\nlines", 3), ("France", "-1", "after", 5)]


def test_the_contract_checks_name_the_line_of_a_bad_value(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    uri = landed(ctx, config, "sales", "sales_2024-01-03.csv", SALES_1.replace(b"10.5", b"ten"))
    con = ctx.warehouse.scratch()
    reader = files.reader_for(config, config.source.resources[0])
    con.execute(f"create or replace temp table sales_rows as {reader.select_sql(con, uri)}")
    contract = Contract("shop_sales", "raw.shop_sales", (Column("country_name", "string", nullable=False),
                                                         Column("_2024_total", "double", min=0),
                                                         Column("note", "string")))
    results = {r.check_name: r for r in check_relation(con, "sales_rows", contract, row_id="_line")
               if not r.passed}
    assert set(results) == {"type", "min"}
    assert row_numbers(results["type"]) == [2]  # `ten` is on line 2
    assert row_numbers(results["min"]) == [5]  # -1, below the line that spans two


def test_a_header_naming_a_column_twice_keeps_both() -> None:
    assert files.header_names(["Country Name", "country_name", "2024 total"]) == [
        "country_name", "country_name_2", "_2024_total"]
    assert files.header_names(["x", "x", "X"]) == ["x", "x_2", "x_3"]


def test_a_headerless_csv_takes_the_contracts_columns_in_order(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    columns, rows = read(ctx, config, "stores", landed(ctx, config, "stores", "stores.csv", STORES_GOOD))
    assert [name for name, _ in columns] == ["store_id", "city", "column_3", "_line"]  # a third, undeclared column
    assert rows == [("1", "Lisbon", "PT", 1), ("2", "Porto", "PT", 2)]


def test_a_ragged_csv_row_is_an_error_naming_its_line(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    uri = landed(ctx, config, "stores", "stores_ragged.csv", b"1,Lisbon\n2,Porto\n3,Faro,extra\n")
    with pytest.raises(duckdb.Error, match="Line: 3"):
        read(ctx, config, "stores", uri)


def test_an_empty_csv_is_an_error_with_a_header_and_no_rows_without(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    with pytest.raises(duckdb.Error, match="the file is empty"):
        read(ctx, config, "sales", landed(ctx, config, "sales", "sales_2024-01-04.csv", b""))
    columns, rows = read(ctx, config, "stores", landed(ctx, config, "stores", "stores_empty.csv", b""))
    assert ([name for name, _ in columns], rows) == (["store_id", "city", "_line"], [])


def test_json_lines_read_every_field_as_text_numbered_by_record(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    data = EVENTS.replace(b"\n{", b"\n\n{")  # a blank line between the records
    columns, rows = read(ctx, config, "events", landed(ctx, config, "events", "events.jsonl", data))
    assert columns == [("user_id", "VARCHAR"), ("event_type", "VARCHAR"), ("meta", "VARCHAR"), ("_line", "BIGINT")]
    assert rows == [("7", "click", '{"x":1}', 1), ("eight", "view", None, 2)]


def test_a_gzipped_file_lands_as_received_and_reads_decompressed(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    packed = gzip.compress(EVENTS)
    uri = landed(ctx, config, "logs", "events.jsonl.gz", packed)
    assert uri.endswith(".jsonl.gz")
    assert ctx.warehouse.query("select rows from ops.batches where source = 'shop_logs'") == [(None,)]  # not counted
    assert read(ctx, config, "logs", uri)[1] == [("7", "click", '{"x":1}', 1), ("eight", "view", None, 2)]


@pytest.mark.parametrize("data, expected", [
    (b"", None),
    (b"[1, 2]\n[3]\n", "not JSON objects"),
    (b'{"a": 1}\nnot json\n', "Malformed JSON"),
])
def test_json_lines_that_hold_no_objects(shop: tuple[RunContext, PipelineConfig], data: bytes,
                                         expected: str | None) -> None:
    ctx, config = shop
    uri = landed(ctx, config, "events", f"odd_{len(data)}.jsonl", data)
    if expected is None:
        assert read(ctx, config, "events", uri) == ([("_line", "BIGINT")], [])  # no contract columns declared
        return
    with pytest.raises(duckdb.Error, match=expected):
        read(ctx, config, "events", uri)


def test_parquet_keeps_its_types_under_normalised_names(shop: tuple[RunContext, PipelineConfig], tmp_path: Path) -> None:
    ctx, config = shop
    columns, rows = read(ctx, config, "prices", landed(ctx, config, "prices", "prices.parquet", parquet_bytes(tmp_path)))
    assert columns == [("item_id", "INTEGER"), ("item_name", "VARCHAR"), ("unit_price", "DECIMAL(3,2)"),
                       ("valid_from", "DATE"), ("_line", "BIGINT")]
    assert [(r[0], r[1], r[-1]) for r in rows] == [(1, "Apple Pie", 1), (2, "Bread", 2), (3, "Cake", 3)]


def test_on_postgresql_each_format_reads_in_file_order_and_loads_with_copy(tmp_path: Path, pg_url: str) -> None:
    """PostgreSQL's scratch DuckDB does not preserve insertion order and runs on several
    threads: a large file's rows must still carry their own line numbers."""
    big = b"Country Name;2024 total;Note\n" + b"".join(
        (b'C%d;%d;"a\nb"\n' if i % 1000 == 0 else b"C%d;%d;x\n") % (i, i) for i in range(200_000))
    with files_context(tmp_path, warehouse=pg_url) as (ctx, config):
        assert ctx.warehouse.kind == "postgres"
        uris = {
            "sales": landed(ctx, config, "sales", "sales_2024-02-01.csv", big),
            "events": landed(ctx, config, "events", "events.jsonl", EVENTS),
            "prices": landed(ctx, config, "prices", "prices.parquet", parquet_bytes(tmp_path)),
        }
        con = ctx.warehouse.scratch()
        assert con.execute("select current_setting('preserve_insertion_order')").fetchone() == (False,)
        reader = files.reader_for(config, config.source.resources[0])
        con.execute(f"create or replace temp table big_rows as {reader.select_sql(con, uris['sales'])}")
        # row i starts on line 2 + i, plus one for each quoted line break in the rows above it (every 1000th)
        i = "cast(_2024_total as bigint)"
        expected = f"2 + {i} + case when {i} = 0 then 0 else ({i} - 1) // 1000 + 1 end"
        assert con.execute(f"select count(*), count_if(_line <> {expected}) from big_rows").fetchone() == (200_000, 0)

        ctx.warehouse.execute("create table raw.shop_sales (country_name text, total double precision, line bigint)")
        with ctx.warehouse.transaction():
            loaded = ctx.warehouse.load_from_scratch(
                "select country_name, cast(_2024_total as double), _line from big_rows",
                "raw.shop_sales", ["country_name", "total", "line"])
        assert loaded == 200_000
        assert ctx.warehouse.query("select country_name, line from raw.shop_sales where line between 2 and 5 "
                                   "or line between 1002 and 1005 order by line") == [
            ("C0", 2), ("C1", 4), ("C2", 5), ("C999", 1002), ("C1000", 1003), ("C1001", 1005)]
        assert read(ctx, config, "events", uris["events"])[1] == [("7", "click", '{"x":1}', 1), ("eight", "view", None, 2)]
        assert [r[-1] for r in read(ctx, config, "prices", uris["prices"])[1]] == [1, 2, 3]
