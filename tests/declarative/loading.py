"""Stand-ins for the load tests: a declarative REST pipeline's config built in code, a real
warehouse (DuckDB, or PostgreSQL in a database of the module) and lake in a temp dir, and
JSON pages landed as the REST fetch lands them."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from lakebox.declarative.config import (
    ColumnConfig,
    ContractConfig,
    PipelineConfig,
    ResourceConfig,
    SourceConfig,
)
from lakebox.ingest.batches import BatchReader
from lakebox.ingest.json_pages import PageReader
from lakebox.lake import Lake
from lakebox.runner import RunContext
from lakebox.settings import PipelineSettings, Settings
from lakebox.warehouse import Warehouse, open_warehouse, ops
from lakebox.warehouse.ops import quarantine as items

COLUMNS = (
    ColumnConfig("id", "integer", required=True),
    ColumnConfig("pm25", "number", min=0, max=1000),
    ColumnConfig("flag", "text", accepted=("a", "b")),
    ColumnConfig("measured_at", "timestamp", min="2024-01-01T00:00:00"),
)


def config(folder: Path, schema: str = "freeze", write: str = "append", version: str | None = None,
           columns: tuple[ColumnConfig, ...] = COLUMNS) -> PipelineConfig:
    """A one-resource REST pipeline under a fresh name (so tests can share a database)."""
    resource = ResourceConfig(name="readings", primary_key=("id",), write_disposition=write,  # type: ignore[arg-type]
                              version_field=version, path="/readings", data_selector="data",
                              contract=ContractConfig(schema=schema, columns=columns))  # type: ignore[arg-type]
    name = f"air_{uuid.uuid4().hex[:8]}"
    return PipelineConfig(name=name, folder=folder, description="air quality",
                          source=SourceConfig(type="rest", resources=(resource,), base_url="http://127.0.0.1:1"))


def pages(config: PipelineConfig, resource: ResourceConfig) -> BatchReader:
    """The reader of landed pages, as declarative.rest.reader_for gives it: records at data_selector."""
    return PageReader("$." + resource.data_selector if resource.data_selector else "$")


@contextmanager
def warehouse_for(folder: Path, url: str | None) -> Iterator[tuple[Settings, Warehouse]]:
    env = {"LAKEBOX_HOME": str(folder)} | ({"LAKEBOX_WAREHOUSE": url} if url else {})
    settings = Settings.load(env=env, cwd=folder)
    with open_warehouse(settings) as wh:
        yield settings, wh


def context(settings: Settings, wh: Warehouse, config: PipelineConfig, run_id: str,
            policy: str | None = None) -> RunContext:
    """A run of the pipeline (its policy setting declared, as the spec builder declares it)."""
    declared = PipelineSettings(config.name, {"policy": policy}, {"policy": f"LAKEBOX_{config.name.upper()}_POLICY"})
    settings = dataclasses.replace(settings, pipelines={**settings.pipelines, config.name: declared})
    return RunContext(settings=settings, lake=Lake(settings.lake), warehouse=wh, run_id=run_id, pipeline=config.name)


def land(ctx: RunContext, config: PipelineConfig, records: list[dict[str, Any]], page: int) -> str:
    """One JSON page of records landed and in the ledger, as the REST fetch leaves it."""
    resource = config.source.resources[0]
    body = orjson.dumps({"data": records, "page": page})
    manifest = ctx.lake.land_batch(config.ledger_source(resource), body, "json", rows=len(records),
                                   meta={"resource": resource.name, "request": {"page": page}})
    ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
    return manifest.batch_id


def raw(ctx: RunContext, config: PipelineConfig, columns: str = "id") -> list[tuple[Any, ...]]:
    return ctx.warehouse.query(f"select {columns} from {config.raw_table(config.source.resources[0])} order by 1, 2"
                               if "," in columns else
                               f"select {columns} from {config.raw_table(config.source.resources[0])} order by 1")


def statuses(ctx: RunContext, config: PipelineConfig) -> dict[str, str]:
    source = config.ledger_source(config.source.resources[0])
    return dict(ctx.warehouse.query("select batch_id, status from ops.batches where source = ?", [source]))


def dq(ctx: RunContext, config: PipelineConfig, batch_id: str) -> dict[tuple[str, str | None], tuple[bool, int]]:
    """(check, column) -> (passed, failing rows) of one batch in ops.dq_results."""
    return {(c, col): (bool(p), int(n)) for c, col, p, n in ctx.warehouse.query(
        "select check_name, column_name, passed, failing_rows from ops.dq_results where batch_id = ?", [batch_id])}


def open_items(ctx: RunContext, config: PipelineConfig) -> list[items.QuarantineItem]:
    return items.items(ctx.warehouse, pipeline=config.name)


def errors_json(ctx: RunContext, item: items.QuarantineItem) -> Any:
    return orjson.loads(ctx.lake.read_bytes(item.quarantine_path + ".errors.json"))


def run_status(ctx: RunContext) -> str:
    """The status the runner gives the run: failed when the gate stopped it, partial while
    a quarantined item of the pipeline is open, else success."""
    if ctx.gate_stops:
        return "failed"
    return "partial" if items.items(ctx.warehouse, pipeline=ctx.pipeline) else "success"
