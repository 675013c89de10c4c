"""The audit trail: ops.pipeline_runs, ops.stage_runs and ops.dq_results.

A handful of rows per run, stage or batch, never per data row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from lakebox.warehouse.ops._rows import append_rows, utcnow

if TYPE_CHECKING:
    from lakebox.warehouse.base import Warehouse

DDL = (
    """create table if not exists ops.pipeline_runs (
        run_id varchar primary key, pipeline varchar not null, status varchar not null,
        started_at timestamp not null, ended_at timestamp, duration_s double precision,
        rows_in bigint, rows_out bigint, error varchar)""",
    """create table if not exists ops.stage_runs (
        run_id varchar not null, pipeline varchar not null, stage varchar not null,
        status varchar not null, started_at timestamp not null, ended_at timestamp,
        duration_s double precision, rows_in bigint, rows_out bigint, error varchar)""",
    """create table if not exists ops.dq_results (
        run_id varchar, batch_id varchar not null, source varchar not null,
        check_name varchar not null, column_name varchar, passed boolean not null,
        failing_rows bigint not null, sample varchar, checked_at timestamp not null)""",
)


class CheckOutcome(Protocol):
    """What a quality check reports (lakebox.quality.gate.CheckResult is one)."""

    @property
    def check_name(self) -> str: ...
    @property
    def column_name(self) -> str | None: ...
    @property
    def passed(self) -> bool: ...
    @property
    def failing_rows(self) -> int: ...
    @property
    def sample(self) -> list[Any]: ...


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


def runs_page(wh: Warehouse, pipelines: Sequence[str] | None = None, statuses: Sequence[str] | None = None,
              limit: int = 50, offset: int = 0) -> list[tuple[Any, ...]]:
    """One page of runs, newest first, of these pipelines and statuses (None: all), as recent_runs."""
    where, params = _runs_filter(pipelines, statuses)
    return wh.query(
        "select run_id, pipeline, status, started_at, duration_s, rows_in, rows_out, error "
        f"from ops.pipeline_runs{where} order by started_at desc, run_id limit ? offset ?",
        [*params, limit, offset],
    )


def run_counts(wh: Warehouse) -> list[tuple[Any, ...]]:
    """(pipeline, status, runs) over every run, running ones included."""
    return wh.query("select pipeline, status, count(*) from ops.pipeline_runs group by 1, 2 order by 1, 2")


def _runs_filter(pipelines: Sequence[str] | None, statuses: Sequence[str] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (("pipeline", pipelines), ("status", statuses)):
        if values is not None:
            clauses.append(f"{column} in ({', '.join('?' for _ in values)})" if values else "1 = 0")
            params.extend(values)
    return (" where " + " and ".join(clauses) if clauses else ""), params


def last_stage_success(wh: Warehouse, pipeline: str, stage: str) -> Any:
    """When `stage` of `pipeline` last ended well (None: never)."""
    return wh.query(
        "select max(ended_at) from ops.stage_runs where pipeline = ? and stage = ? and status = 'success'",
        [pipeline, stage],
    )[0][0]


def run_totals(wh: Warehouse) -> list[tuple[Any, ...]]:
    """(pipeline, status, runs, rows in, rows out) of every finished run, by pipeline and status."""
    return wh.query(
        "select pipeline, status, count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_out), 0) "
        "from ops.pipeline_runs where status <> 'running' group by 1, 2"
    )


def last_built(wh: Warehouse) -> list[tuple[Any, ...]]:
    """(pipeline, ended_at) of each pipeline's last run that built its marts (success or partial)."""
    return wh.query(
        "select pipeline, max(ended_at) from ops.pipeline_runs where status in ('success', 'partial') group by 1"
    )


def last_finished(wh: Warehouse) -> list[tuple[Any, ...]]:
    """(pipeline, status, duration_s) of each pipeline's latest finished run."""
    return wh.query(
        "select r.pipeline, r.status, r.duration_s from ops.pipeline_runs r join ("
        " select pipeline, max(started_at) as started_at from ops.pipeline_runs"
        " where status <> 'running' group by pipeline) l"
        " on r.pipeline = l.pipeline and r.started_at = l.started_at where r.status <> 'running'"
    )


def dq_counts(wh: Warehouse) -> list[tuple[Any, ...]]:
    """(source, check, passed, how many) over every recorded quality check."""
    return wh.query("select source, check_name, passed, count(*) from ops.dq_results group by 1, 2, 3")


def stage_runs(wh: Warehouse, run_id: str) -> list[tuple[Any, ...]]:
    return wh.query(
        "select stage, status, started_at, duration_s, rows_in, rows_out, error "
        "from ops.stage_runs where run_id = ? order by started_at",
        [run_id],
    )


# ------------------------------------------------------------------ quality results
def record_dq_results(
    wh: Warehouse, run_id: str | None, batch_id: str, source: str, results: Iterable[CheckOutcome]
) -> None:
    """Every check of one batch, in one bulk append."""
    record_dq_results_many(wh, run_id, source, [(batch_id, results)])


def record_dq_results_many(
    wh: Warehouse, run_id: str | None, source: str, results: Iterable[tuple[str, Iterable[CheckOutcome]]]
) -> None:
    """`record_dq_results` for many batches, (batch_id, results) pairs, in one bulk append."""
    rows = [
        (batch_id, r.check_name, r.column_name, r.passed, r.failing_rows,
         orjson.dumps(r.sample, default=str).decode() if r.sample else None)
        for batch_id, batch_results in results for r in batch_results
    ]
    if not rows:
        return
    batch_ids, checks, columns, passed, failing, samples = (list(c) for c in zip(*rows, strict=True))
    append_rows(wh, "ops.dq_results", {
        "run_id": ("varchar", [run_id] * len(rows)),
        "batch_id": ("varchar", batch_ids),
        "source": ("varchar", [source] * len(rows)),
        "check_name": ("varchar", checks),
        "column_name": ("varchar", columns),
        "passed": ("boolean", passed),
        "failing_rows": ("bigint", failing),
        "sample": ("varchar", samples),
        "checked_at": ("timestamp", [utcnow()] * len(rows)),
    })


def dq_summary(wh: Warehouse) -> list[tuple[Any, ...]]:
    """Per source and check: how often it ran, failed, and when it last ran."""
    return wh.query(
        "select source, check_name, column_name, count(*) as checks, "
        "sum(case when passed then 0 else 1 end) as failed, "
        "cast(sum(failing_rows) as bigint) as failing_rows, max(checked_at) as last_checked "
        "from ops.dq_results group by source, check_name, column_name "
        "order by failed desc, source, check_name, column_name"
    )


def dq_failures(wh: Warehouse, limit: int = 200) -> list[tuple[Any, ...]]:
    return wh.query(
        "select checked_at, source, batch_id, check_name, column_name, failing_rows, sample, run_id "
        "from ops.dq_results where not passed order by checked_at desc, source, check_name limit ?",
        [limit],
    )
