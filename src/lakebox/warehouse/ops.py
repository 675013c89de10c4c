"""The ops.* audit tables: runs, stages, quality results, the batch ledger, source state.

These writes are a handful of rows per run or batch, never per data row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
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
    now = utcnow()
    for r in results:
        wh.execute(
            "insert into ops.dq_results (run_id, batch_id, source, check_name, column_name, passed, "
            "failing_rows, sample, checked_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                batch_id,
                source,
                r.check_name,
                r.column_name,
                r.passed,
                r.failing_rows,
                orjson.dumps(r.sample, default=str).decode() if r.sample else None,
                now,
            ],
        )


# ------------------------------------------------------------------ the batch ledger
def record_landed(wh: Warehouse, manifest: BatchManifest, run_id: str) -> bool:
    """Add a landed batch to the ledger. False when the ledger already knows it."""
    if batch_status(wh, manifest.batch_id) is not None:
        return False
    wh.execute(
        "insert into ops.batches (batch_id, source, lake_path, sha256, bytes, rows, status, landed_at, "
        "run_id, meta) values (?, ?, ?, ?, ?, ?, 'landed', ?, ?, ?)",
        [
            manifest.batch_id,
            manifest.source,
            manifest.key,
            manifest.sha256,
            manifest.bytes,
            manifest.rows,
            utcnow(),
            run_id,
            orjson.dumps(manifest.meta).decode(),
        ],
    )
    return True


def batch_status(wh: Warehouse, batch_id: str) -> str | None:
    rows = wh.query("select status from ops.batches where batch_id = ?", [batch_id])
    return rows[0][0] if rows else None


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
