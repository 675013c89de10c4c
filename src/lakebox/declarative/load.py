"""The load stage of a declarative pipeline: every resource's pending batches through the
one gate into `raw.<pipeline>_<resource>`.

Each resource's `[contract]` becomes a `Contract` (the same object a coded pipeline
declares) and its `write_disposition` a `Write`; `ingest.batches.load_pending_batches` does
the rest, as for the bundled pipelines, so there is one engine configured two ways.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lakebox.declarative.config import ColumnConfig, PipelineConfig, ResourceConfig
from lakebox.quality.contract import Column, Contract, LogicalType
from lakebox.stage import StageResult

if TYPE_CHECKING:
    from lakebox.ingest.batches import BatchReader
    from lakebox.stage import RunContext

LOGICAL_TYPES: dict[str, LogicalType] = {
    "integer": "integer", "number": "double", "text": "string", "boolean": "boolean", "date": "date",
    "timestamp": "timestamp",
}

ReaderFor = Callable[[PipelineConfig, ResourceConfig], "BatchReader"]


def contract_for(config: PipelineConfig, resource: ResourceConfig) -> Contract:
    """The resource's contract: its declared columns typed and ruled, its primary key (and
    each `unique` column) unique within a batch, its schema mode. A resource that declares
    no columns takes what its source sends (`evolve`): under `freeze` nothing could load."""
    declared = resource.contract
    key = resource.primary_key
    merging_versions = resource.write_disposition == "merge" and resource.version_field
    return Contract(
        source=config.ledger_source(resource),
        table=config.raw_table(resource),
        columns=tuple(_column(c, key) for c in declared.columns),
        # several versions of a key may come in one batch when merge picks the latest by version
        unique_key=(*key, resource.version_field) if merging_versions and resource.version_field else key,
        unique_keys=tuple((c.name,) for c in declared.columns if c.unique and (c.name,) != key),
        version_key=(key[0], resource.version_field) if len(key) == 1 and resource.version_field else (),
        description=config.description,
        schema_mode=declared.schema if declared.columns else "evolve",
    )


def _column(column: ColumnConfig, key: tuple[str, ...]) -> Column:
    kind = LOGICAL_TYPES[column.type]
    numeric = kind in ("integer", "double")
    return Column(
        name=column.name,
        type=kind,
        nullable=not column.required and column.name not in key,
        min=_bound(column.min, numeric),
        max=_bound(column.max, numeric),
        accepted=tuple(str(v) for v in column.accepted) if column.accepted else None,
        pattern=column.pattern,
    )


def _bound(value: float | str | None, numeric: bool) -> float | str | None:
    """A numeric bound as a number, a date/timestamp bound as its ISO text."""
    if value is None:
        return None
    return float(value) if numeric else str(value)


def hint(config: PipelineConfig, resource: ResourceConfig) -> str:
    return (f"fix the source and send the data again, or, if the change is intended, change the contract of "
            f"resource {resource.name!r} in {config.path} and run again")


def reader_for(config: PipelineConfig, resource: ResourceConfig) -> BatchReader:
    """The reader of the resource's landed batches: lakebox.declarative.rest's (JSON pages) or
    lakebox.declarative.files' (csv, jsonl, parquet), as the source's type says."""
    import importlib

    source = importlib.import_module(f"lakebox.declarative.{config.source.type}")
    reader: BatchReader = source.reader_for(config, resource)
    return reader


def load(ctx: RunContext, config: PipelineConfig) -> StageResult:
    """Every resource's pending batches through the gate into its raw table."""
    return load_resources(ctx, config, reader_for)


def load_resources(ctx: RunContext, config: PipelineConfig, readers: ReaderFor) -> StageResult:
    """`load` with the readers given (`readers(config, resource)`), under the pipeline's policy."""
    from lakebox.ingest.batches import Write, load_pending_batches
    from lakebox.quality.gate import policy_for

    policy = policy_for(ctx.settings, config.name)
    total = StageResult()
    for resource in config.source.resources:
        write = Write(resource.write_disposition, resource.primary_key, resource.version_field)
        result = load_pending_batches(ctx, contract_for(config, resource), readers(config, resource),
                                      hint(config, resource), write=write, policy=policy)
        total.rows_in += result.rows_in
        total.rows_out += result.rows_out
    return total
