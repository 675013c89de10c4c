"""A declarative files pipeline in a temp dir, for the tests of `lakebox.declarative.files`:
its pipeline.toml (CSV with `Country Name`-style headers and `;`, a headerless CSV, JSON
lines, Parquet), a real home (lake and DuckDB or PostgreSQL warehouse) and a RunContext."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from lakebox.declarative.config import PipelineConfig, load_config
from lakebox.lake.remote import lake_for_url
from lakebox.settings import Settings
from lakebox.stage import RunContext
from lakebox.warehouse import open_warehouse

PIPELINE_TOML = r'''
description = "Shop files: daily sales, a store list, click events and prices"

[source]
type = "files"
landing = "drops"

[[source.resources]]
name = "sales"
glob = "sales_*.csv"
format = "csv"
delimiter = ";"
partition_pattern = 'sales_(\d{4}-\d{2}-\d{2})\.csv'

[source.resources.contract]
columns.country_name = { type = "text", required = true }
columns._2024_total = { type = "number", min = 0 }

[[source.resources]]
name = "stores"
glob = "stores*.csv"
format = "csv"
header = false

[source.resources.contract]
columns.store_id = { type = "integer" }
columns.city = { type = "text" }

[[source.resources]]
name = "events"
glob = "*.jsonl"
format = "jsonl"

[[source.resources]]
name = "logs"
glob = "*.jsonl.gz"
format = "jsonl"

[[source.resources]]
name = "prices"
glob = "*.parquet"
format = "parquet"
'''

SALES_1 = b'Country Name;2024 total;Note\nPortugal;10.5;plain\nSpain;"7";"two\nlines"\nFrance;-1;after\n'
STORES = b"1,Lisbon\n2,Porto,extra\n"  # the second row is ragged: a parse error naming line 2
EVENTS = b'{"userId": 7, "Event Type": "click", "meta": {"x": 1}}\n{"userId": "eight", "Event Type": "view"}\n'


def write_pipeline(root: Path, toml: str = PIPELINE_TOML, name: str = "shop") -> Path:
    """A project at `root` (its lakebox.toml) holding the pipeline in pipelines/<name>/; the pipeline's folder."""
    if not (root / "lakebox.toml").exists():
        root.mkdir(parents=True, exist_ok=True)
        (root / "lakebox.toml").write_text("")
    folder = root / "pipelines" / name
    (folder / "drops").mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.toml").write_text(toml)
    return folder


def parquet_bytes(tmp: Path) -> bytes:
    """Prices as Parquet: typed columns, 3 rows."""
    import duckdb

    path = tmp / "prices.parquet"
    rows = ("(1, 'Apple Pie', 2.5, date '2024-01-01'), (2, 'Bread', 1.25, date '2024-01-02'), "
            "(3, 'Cake', 4.0, null)")
    names = '"Item ID", "Item Name", "Unit Price", "Valid From"'
    duckdb.execute(f"copy (select * from (values {rows}) as t({names})) to '{path}' (format parquet)")
    data = path.read_bytes()
    path.unlink()
    return data


def drop(config: PipelineConfig, name: str, data: bytes) -> Path:
    """A file dropped into the pipeline's landing folder: written aside, then renamed into place."""
    folder = config.folder / "drops"
    aside = folder / f".{name}.part"
    aside.write_bytes(data)
    placed: Path = folder / name
    aside.rename(placed)
    return placed


def restamp(path: Path, seconds: float) -> None:
    """Give a dropped file another modification time."""
    os.utime(path, (seconds, seconds))


@contextmanager
def files_context(root: Path, warehouse: str | None = None, run_id: str = "run-1") -> Iterator[tuple[RunContext, PipelineConfig]]:
    """A RunContext on a fresh home under `root` (DuckDB, or the warehouse URL given) and the
    pipeline's config; the project's settings know the pipeline (its policy)."""
    folder = root / "pipelines" / "shop"
    if not folder.exists():
        write_pipeline(root)
    env = {"LAKEBOX_HOME": str(root / "home"), "LAKEBOX_PROJECT": str(root)}
    if warehouse:
        env["LAKEBOX_WAREHOUSE"] = warehouse
    settings = Settings.load(env=env, cwd=root)
    with open_warehouse(settings) as wh:
        ctx = RunContext(settings=settings, lake=lake_for_url(settings.lake, settings.env), warehouse=wh,
                         run_id=run_id, pipeline="shop")
        yield ctx, load_config(folder)


def ledger(ctx: RunContext, source: str) -> list[tuple[str, str, int | None, dict[str, object]]]:
    """(batch_id, status, rows, meta) of a source's batches, in landing order."""
    return [(b, s, r, orjson.loads(m or "{}")) for b, s, r, m in ctx.warehouse.query(
        "select batch_id, status, rows, meta from ops.batches where source = ? order by landed_at, batch_id",
        [source])]
