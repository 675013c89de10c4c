"""The ops.* audit tables: runs, stages, quality results, the batch ledger, source state.

These writes are a handful of rows per run or batch, never per data row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lakebox.lake import BatchManifest
from lakebox.warehouse.base import Warehouse

LANDED, LOADED, QUARANTINED = "landed", "loaded", "quarantined"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ------------------------------------------------------------------ runs and stages
def start_run(wh: Warehouse, run_id: str, pipeline: str) -> None:
    """Record a new run; a run of this pipeline still 'running' was interrupted (one
    runner per pipeline at a time), so it is closed as failed first."""
    wh.execute(
        "update ops.pipeline_runs set status = 'failed', ended_at = ?, "
        "error = 'interrupted: the process ended before the run finished' "
        "where pipeline = ? and status = 'running'",
        [utcnow(), pipeline],
    )
    wh.execute(
        "insert into ops.pipeline_runs (run_id, pipeline, status, started_at) values (?, ?, 'running', ?)",
        [run_id, pipeline, utcnow()],
    )


def end_run(
    wh: Warehouse, run_id: str, status: str, started: dt.datetime, rows_in: int, rows_out: int, error: str | None
) -> None:
    ended = utcnow()
    wh.execute(
        "update ops.pipeline_runs set status = ?, ended_at = ?, duration_s = ?, rows_in = ?, "
        "rows_out = ?, error = ? where run_id = ?",
        [status, ended, (ended - started).total_seconds(), rows_in, rows_out, error, run_id],
    )


def record_stage(
    wh: Warehouse,
    run_id: str,
    pipeline: str,
    stage: str,
    status: str,
    started: dt.datetime,
    rows_in: int,
    rows_out: int,
    error: str | None,
) -> None:
    ended = utcnow()
    wh.execute(
        "insert into ops.stage_runs (run_id, pipeline, stage, status, started_at, ended_at, "
        "duration_s, rows_in, rows_out, error) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, pipeline, stage, status, started, ended, (ended - started).total_seconds(), rows_in, rows_out, error],
    )


def recent_runs(wh: Warehouse, limit: int = 20) -> list[tuple[Any, ...]]:
    return wh.query(
        "select run_id, pipeline, status, started_at, duration_s, rows_in, rows_out, error "
        "from ops.pipeline_runs order by started_at desc limit ?",
        [limit],
    )


# ------------------------------------------------------------------ quality results
@dataclass(frozen=True)
class CheckResult:
    check_name: str
    column_name: str | None
    passed: bool
    failing_rows: int
    sample: list[Any]
    detail: str = ""


def record_dq_results(
    wh: Warehouse, run_id: str | None, batch_id: str, source: str, results: Iterable[CheckResult]
) -> None:
    """Every check of one batch, in one bulk append."""
    record_dq_results_many(wh, run_id, source, [(batch_id, results)])


def record_dq_results_many(
    wh: Warehouse, run_id: str | None, source: str, results: Iterable[tuple[str, Iterable[CheckResult]]]
) -> None:
    """`record_dq_results` for many batches, (batch_id, results) pairs, in one bulk append."""
    import pyarrow as pa

    rows = [
        (batch_id, r.check_name, r.column_name, r.passed, r.failing_rows,
         orjson.dumps(r.sample, default=str).decode() if r.sample else None)
        for batch_id, batch_results in results for r in batch_results
    ]
    if not rows:
        return
    batch_ids, checks, columns, passed, failing, samples = (list(c) for c in zip(*rows, strict=True))
    _append_arrow(wh, "ops.dq_results", pa.table({
        "run_id": pa.array([run_id] * len(rows), pa.string()),
        "batch_id": batch_ids,
        "source": [source] * len(rows),
        "check_name": checks,
        "column_name": pa.array(columns, pa.string()),
        "passed": pa.array(passed, pa.bool_()),
        "failing_rows": pa.array(failing, pa.int64()),
        "sample": pa.array(samples, pa.string()),
        "checked_at": pa.array([utcnow()] * len(rows), pa.timestamp("us")),
    }))


# ------------------------------------------------------------------ the batch ledger
def record_landed(wh: Warehouse, manifest: BatchManifest, run_id: str) -> bool:
    """Add a landed batch to the ledger. False when the ledger already knows it."""
    return record_landed_many(wh, [manifest], run_id) == 1


def record_landed_many(wh: Warehouse, manifests: Sequence[BatchManifest], run_id: str) -> int:
    """Add many landed batches in one bulk insert (not a statement per batch); batches the
    ledger already knows are skipped. Returns how many were added. Call inside a transaction
    to make it atomic with other ledger writes."""
    import pyarrow as pa

    ids = [m.batch_id for m in manifests]
    known: set[str] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        marks = ", ".join("?" for _ in chunk)
        known |= {r[0] for r in wh.query(f"select batch_id from ops.batches where batch_id in ({marks})", chunk)}
    fresh = list({m.batch_id: m for m in manifests if m.batch_id not in known}.values())
    if not fresh:
        return 0
    now = utcnow()
    table = pa.table({
        "batch_id": [m.batch_id for m in fresh],
        "source": [m.source for m in fresh],
        "lake_path": [m.key for m in fresh],
        "sha256": [m.sha256 for m in fresh],
        "bytes": pa.array([m.bytes for m in fresh], pa.int64()),
        "rows": pa.array([m.rows for m in fresh], pa.int64()),
        "status": [LANDED] * len(fresh),
        "landed_at": pa.array([now] * len(fresh), pa.timestamp("us")),
        "run_id": [run_id] * len(fresh),
        "meta": [orjson.dumps(m.meta).decode() for m in fresh],
    })
    _append_arrow(wh, "ops.batches", table)
    return len(fresh)


def _append_arrow(wh: Warehouse, target: str, table: Any) -> None:
    """Bulk-append an Arrow table through the warehouse's scratch connection."""
    scratch = wh.scratch()
    scratch.complete()  # DuckDB will not register while a result is unread
    scratch.register("lakebox_ops_rows", table)
    try:
        wh.load_from_scratch("select * from lakebox_ops_rows", target, table.column_names)
    finally:
        scratch.unregister("lakebox_ops_rows")


def pending_batches(wh: Warehouse, source: str) -> list[tuple[str, str, str]]:
    """(batch_id, lake_path, meta) of landed batches not yet loaded or quarantined, oldest first."""
    return [
        (r[0], r[1], r[2])
        for r in wh.query(
            "select batch_id, lake_path, meta from ops.batches where source = ? and status = 'landed' "
            "order by landed_at, batch_id",
            [source],
        )
    ]


def mark_batch(wh: Warehouse, batch_id: str, status: str, rows: int | None = None, error: str | None = None) -> None:
    wh.execute(
        "update ops.batches set status = ?, loaded_at = ?, rows = coalesce(?, rows), error = ? where batch_id = ?",
        [status, utcnow(), rows, error, batch_id],
    )


def mark_batches(wh: Warehouse, batch_ids: Sequence[str], status: str) -> None:
    """`mark_batch` for many batches at once (rows keep the count recorded when landed)."""
    now = utcnow()
    for start in range(0, len(batch_ids), 1000):
        chunk = list(batch_ids[start:start + 1000])
        marks = ", ".join("?" for _ in chunk)
        wh.execute(
            f"update ops.batches set status = ?, loaded_at = ?, error = null where batch_id in ({marks})",
            [status, now, *chunk],
        )


# ------------------------------------------------------------------ source state
def get_state(wh: Warehouse, source: str, key: str) -> str | None:
    rows = wh.query("select value from ops.source_state where source = ? and state_key = ?", [source, key])
    return rows[0][0] if rows else None


def set_state(wh: Warehouse, source: str, key: str, value: str) -> None:
    with wh.transaction():
        wh.execute("delete from ops.source_state where source = ? and state_key = ?", [source, key])
        wh.execute(
            "insert into ops.source_state (source, state_key, value, updated_at) values (?, ?, ?, ?)",
            [source, key, value, utcnow()],
        )
