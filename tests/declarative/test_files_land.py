"""Landing a declarative files pipeline's drops (`lakebox.declarative.files.land`): each
resource's new files into the raw lake as received and pending in the ledger, with file
name and partition date; re-landing is a no-op, a corrected file is a new batch, an
unchanged listing is not read, a misnamed file is quarantined and, renamed, pending again.
Real lake and DuckDB warehouse in a temp dir; a real S3 endpoint (moto) for an s3:// folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakebox.declarative import files
from lakebox.declarative.config import PipelineConfig
from lakebox.stage import RunContext
from tests.declarative.files_standins import (
    EVENTS,
    SALES_1,
    STORES,
    drop,
    files_context,
    ledger,
    parquet_bytes,
    restamp,
    write_pipeline,
)

SALES_2 = b"Country Name;2024 total;Note\nItaly;3;x\n"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[RunContext, PipelineConfig]]:
    with files_context(tmp_path) as found:
        yield found


def statuses(ctx: RunContext, source: str) -> list[str]:
    return [status for _, status, _, _ in ledger(ctx, source)]


def test_each_resource_lands_its_new_files_as_received_pending_with_file_and_date(
    shop: tuple[RunContext, PipelineConfig], tmp_path: Path,
) -> None:
    ctx, config = shop
    prices = parquet_bytes(tmp_path)
    for name, data in [("sales_2024-01-01.csv", SALES_1), ("sales_2024-01-02.csv", SALES_2), ("stores.csv", STORES),
                       ("events.jsonl", EVENTS), ("prices.parquet", prices), ("notes.txt", b"not data")]:
        drop(config, name, data)

    result = files.land(ctx, config)

    sales = ledger(ctx, "shop_sales")
    assert [(s, r, m["file"], m["date"]) for _, s, r, m in sales] == [
        ("landed", 4, "sales_2024-01-01.csv", "2024-01-01"),  # 4 lines less the header (one value spans two)
        ("landed", 1, "sales_2024-01-02.csv", "2024-01-02"),
    ]
    assert [(s, r, m["file"], m["date"]) for _, s, r, m in ledger(ctx, "shop_stores")] == [
        ("landed", 2, "stores.csv", None)]
    assert [(r, m["file"]) for _, _, r, m in ledger(ctx, "shop_events")] == [(2, "events.jsonl")]
    assert [(r, m["file"]) for _, _, r, m in ledger(ctx, "shop_prices")] == [(3, "prices.parquet")]
    assert result.rows_in == 4 + 1 + 2 + 2 + 3
    # the lake keeps each file's bytes as received, under the resource's source
    keys = dict(ctx.warehouse.query("select batch_id, lake_path from ops.batches"))
    assert ctx.lake.read_bytes(keys[sales[0][0]]) == SALES_1
    assert keys[sales[0][0]].startswith("raw/shop_sales/ingest_date=") and keys[sales[0][0]].endswith(".csv")
    assert ctx.lake.read_bytes(next(k for k in keys.values() if k.startswith("raw/shop_prices/"))) == prices
    assert ctx.warehouse.query("select count(*) from ops.quarantine") == [(0,)]


def test_landing_again_is_a_no_op(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    drop(config, "sales_2024-01-01.csv", SALES_1)
    files.land(ctx, config)
    before = ledger(ctx, "shop_sales")

    again = files.land(ctx, config)
    restamp(config.folder / "drops" / "sales_2024-01-01.csv", 1_700_000_000)  # listed anew: read, same bytes
    touched = files.land(ctx, config)

    assert ledger(ctx, "shop_sales") == before
    assert (again.rows_in, touched.rows_in) == (0, 0)


def test_an_unchanged_listing_is_not_read_again(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    path = drop(config, "sales_2024-01-01.csv", SALES_1)
    restamp(path, 1_700_000_000)
    files.land(ctx, config)
    # other bytes of the same size under the same stamp: a read would land them as a new batch
    path.write_bytes(SALES_1.replace(b"Portugal", b"Portugol"))
    restamp(path, 1_700_000_000)

    files.land(ctx, config)
    assert len(ledger(ctx, "shop_sales")) == 1

    restamp(path, 1_700_000_060)  # now its listing changed: read, and its new bytes land
    files.land(ctx, config)
    assert len(ledger(ctx, "shop_sales")) == 2


def test_a_corrected_file_is_a_new_batch_of_the_same_file(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    path = drop(config, "sales_2024-01-01.csv", SALES_1)
    restamp(path, 1_700_000_000)
    files.land(ctx, config)
    drop(config, "sales_2024-01-01.csv", SALES_1.replace(b"-1", b"1"))
    restamp(path, 1_700_000_060)

    files.land(ctx, config)

    versions = ledger(ctx, "shop_sales")
    assert len({batch for batch, _, _, _ in versions}) == 2
    assert [(s, m["file"], m["date"]) for _, s, _, m in versions] == [
        ("landed", "sales_2024-01-01.csv", "2024-01-01")] * 2


@pytest.mark.parametrize("name, why", [
    ("sales_latest.csv", "does not match partition_pattern"),
    ("sales_2024-13-01.csv", "captures '2024-13-01', which is not a date"),
])
def test_a_file_whose_name_the_pattern_cannot_date_is_quarantined_saying_what_to_do(
    shop: tuple[RunContext, PipelineConfig], name: str, why: str,
) -> None:
    ctx, config = shop
    drop(config, name, SALES_2)
    drop(config, "sales_2024-01-01.csv", SALES_1)

    files.land(ctx, config)

    by_file = {m["file"]: (batch, s) for batch, s, _, m in ledger(ctx, "shop_sales")}
    assert by_file["sales_2024-01-01.csv"][1] == "landed"  # the good file keeps flowing
    batch, status = by_file[name]
    assert status == "quarantined"
    (item,) = ctx.quarantined
    assert (item.source, item.batch_id, item.status) == ("shop_sales", batch, "open")
    errors = orjson.loads(ctx.lake.read_bytes(item.quarantine_path + ".errors.json"))
    text = orjson.dumps(errors).decode()
    assert name in text and why in text and "sales_(\\\\d{4}" in text  # the file, the reason, the pattern
    assert "rename the file" in text and "partition_pattern" in text and str(config.path) in text  # what to do
    assert ctx.lake.read_bytes(item.quarantine_path) == SALES_2  # the original bytes are kept
    assert ctx.warehouse.query("select check_name, passed from ops.dq_results where batch_id = ?", [batch]) == [
        ("file_name", False)]


def test_a_misnamed_file_dropped_again_under_a_good_name_is_pending_again(
    shop: tuple[RunContext, PipelineConfig],
) -> None:
    ctx, config = shop
    drop(config, "sales_latest.csv", SALES_2)
    files.land(ctx, config)
    (batch, _, _, _), = ledger(ctx, "shop_sales")

    (config.folder / "drops" / "sales_latest.csv").rename(config.folder / "drops" / "sales_2024-01-05.csv")
    files.land(ctx, config)

    assert [(b, s, m["file"], m["date"]) for b, s, _, m in ledger(ctx, "shop_sales")] == [
        (batch, "landed", "sales_2024-01-05.csv", "2024-01-05")]
    # the item stays open until the gate loads the batch (and settles it by its file name)
    assert ctx.warehouse.query("select status from ops.quarantine where batch_id = ?", [batch]) == [("open",)]


def test_a_misnamed_file_is_read_again_when_the_pattern_changes(tmp_path: Path) -> None:
    folder = write_pipeline(tmp_path)
    with files_context(tmp_path) as (ctx, config):
        drop(config, "sales_20240105.csv", SALES_2)  # a compact date the pattern does not expect
        files.land(ctx, config)
        assert statuses(ctx, "shop_sales") == ["quarantined"]
    toml = (folder / "pipeline.toml").read_text().replace(r"sales_(\d{4}-\d{2}-\d{2})\.csv", r"sales_(\d{8})\.csv")
    (folder / "pipeline.toml").write_text(toml)
    with files_context(tmp_path, run_id="run-2") as (ctx, config):
        files.land(ctx, config)
        assert [(s, m["date"]) for _, s, _, m in ledger(ctx, "shop_sales")] == [("landed", "2024-01-05")]


def test_a_scheduled_days_run_lands_only_those_days_files(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    drop(config, "sales_2024-01-01.csv", SALES_1)
    drop(config, "sales_2024-01-02.csv", SALES_2)
    drop(config, "stores.csv", STORES)
    ctx.extras["days"] = ("2024-01-02", "2024-01-02")

    files.land(ctx, config)

    assert [m["file"] for _, _, _, m in ledger(ctx, "shop_sales")] == ["sales_2024-01-02.csv"]
    assert [m["file"] for _, _, _, m in ledger(ctx, "shop_stores")] == ["stores.csv"]  # undated: always


def test_no_landing_folder_yet_lands_nothing(tmp_path: Path) -> None:
    with files_context(tmp_path) as (ctx, config):
        (config.folder / "drops").rmdir()
        assert files.land(ctx, config).rows_in == 0
        assert files.waiting(ctx.settings, config) == ()
        assert ctx.warehouse.query("select count(*) from ops.batches") == [(0,)]


def test_waiting_changes_with_a_new_or_changed_file_of_a_resource_only(shop: tuple[RunContext, PipelineConfig]) -> None:
    ctx, config = shop
    empty = files.waiting(ctx.settings, config)
    path = drop(config, "sales_2024-01-01.csv", SALES_1)
    restamp(path, 1_700_000_000)
    one = files.waiting(ctx.settings, config)
    drop(config, "notes.txt", b"no resource's glob")
    (config.folder / "drops" / ".sales_2024-01-02.csv.part").write_bytes(b"being written")
    assert files.waiting(ctx.settings, config) == one
    restamp(path, 1_700_000_060)
    changed = files.waiting(ctx.settings, config)
    assert empty == () and len({one, changed}) == 2
    assert [name for name, _ in changed] == ["sales_2024-01-01.csv"]


def test_the_landing_folder_is_the_homes_by_default_and_may_be_on_s3(tmp_path: Path, s3_bucket: str) -> None:
    default = write_pipeline(tmp_path, name="shop")
    (default / "pipeline.toml").write_text((default / "pipeline.toml").read_text().replace('landing = "drops"\n', ""))
    with files_context(tmp_path) as (ctx, config):
        assert files.landing_url(ctx.settings, config) == f"{ctx.settings.landing}/shop"
        landing = Path(ctx.settings.landing) / "shop"
        landing.mkdir(parents=True)
        (landing / "stores.csv").write_bytes(STORES)
        files.land(ctx, config)
        assert statuses(ctx, "shop_stores") == ["landed"]

    import boto3

    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="drops/shop/sales_2024-01-01.csv", Body=SALES_1)
    on_s3 = tmp_path / "s3"
    toml_path = write_pipeline(on_s3) / "pipeline.toml"
    toml_path.write_text(toml_path.read_text().replace('landing = "drops"', f'landing = "s3://{s3_bucket}/drops/shop"'))
    with files_context(on_s3) as (ctx, config):
        files.land(ctx, config)
        assert [(s, m["date"]) for _, s, _, m in ledger(ctx, "shop_sales")] == [("landed", "2024-01-01")]
        assert [name for name, _ in files.waiting(ctx.settings, config)] == ["sales_2024-01-01.csv"]
        files.land(ctx, config)
        assert len(ledger(ctx, "shop_sales")) == 1


def test_a_renamed_file_loads_and_settles_the_item_its_old_name_opened(shop: tuple[RunContext, PipelineConfig]) -> None:
    """Through the generic loader (ingest.batches and the gate) the declarative load uses,
    reading the file's columns (its line numbers are the reader tests' concern)."""
    from lakebox.ingest.batches import load_pending_batches
    from lakebox.quality.contract import Column, Contract

    ctx, config = shop
    drop(config, "sales_latest.csv", SALES_2)
    files.land(ctx, config)
    (config.folder / "drops" / "sales_latest.csv").rename(config.folder / "drops" / "sales_2024-01-05.csv")
    files.land(ctx, config)
    contract = Contract("shop_sales", "raw.shop_sales", (
        Column("country_name", "string"), Column("_2024_total", "double"), Column("note", "string")))

    load_pending_batches(ctx, contract, Columns(files.reader_for(config, config.source.resources[0])), "fix it")

    assert statuses(ctx, "shop_sales") == ["loaded"]
    assert ctx.warehouse.query("select country_name, _2024_total from raw.shop_sales") == [("Italy", 3.0)]
    assert ctx.warehouse.query("select status from ops.quarantine") == [("resolved",)]


class Columns:
    """A files reader's rows without their line numbers."""

    def __init__(self, reader: files.FileReader) -> None:
        self.reader = reader

    def prepare(self, con: Any, uris: list[str]) -> None:
        self.reader.prepare(con, uris)

    def select_sql(self, con: Any, uri: str) -> str:
        return f"select * exclude ({files.LINE_COLUMN}) from ({self.reader.select_sql(con, uri)})"
