"""lakebox runs made outside the scheduler (`lakebox run`, `watch`, the demo), read back from
ops.* in the order they ended, as what each reached (`graph.evaluate`), so the scheduler can
show them. Nothing here imports Dagster, and nothing on `lakebox run`'s path imports this:
the runs are read afterwards, by `lakebox serve`'s sensor.

A run's open quarantined input is what was open when it ended (opened by then, not resolved
by then), as `lakebox run` saw it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.orchestration.graph import PipelineGraph, RunAssets
    from lakebox.pipelines.spec import PipelineSpec
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse


_QUARANTINE_COLUMNS = ("id, source, pipeline, batch_id, item, lake_path, quarantine_path, rules, status, opened_at, "
                       "opened_run_id, resolved_at, resolved_by, reason, superseded_by_batch")  # QuarantineItem's


@dataclass(frozen=True)
class Mark:
    """Where reading stopped: the last run read, by (ended_at, run_id)."""

    ended_at: str
    run_id: str


@dataclass(frozen=True)
class FinishedRun:
    reached: RunAssets
    mark: Mark


def finished_runs(settings: Settings, specs: dict[str, PipelineSpec], graphs: dict[str, PipelineGraph],
                  after: Mark | None, limit: int) -> list[FinishedRun] | None:
    """Up to `limit` runs that ended after `after`, oldest first, each with what it reached;
    None while a run holds the DuckDB warehouse (read again at the next look)."""
    from lakebox.errors import WarehouseError
    from lakebox.orchestration.drops import no_warehouse_yet
    from lakebox.warehouse import open_warehouse

    if no_warehouse_yet(settings):
        return []
    try:
        with open_warehouse(settings, read_only=True) as warehouse:
            if not warehouse.table_exists("ops", "pipeline_runs"):
                return []
            return _read(warehouse, specs, graphs, after, limit)
    except WarehouseError:
        return None


def _read(warehouse: Warehouse, specs: dict[str, PipelineSpec], graphs: dict[str, PipelineGraph],
          after: Mark | None, limit: int) -> list[FinishedRun]:
    from lakebox.orchestration.graph import evaluate
    from lakebox.runner import RunOutcome
    from lakebox.warehouse.ops.quarantine import QuarantineItem

    since = [dt.datetime.fromisoformat(after.ended_at), after.run_id] if after else []
    runs = warehouse.query(
        "select run_id, pipeline, status, duration_s, rows_in, rows_out, error, ended_at from ops.pipeline_runs "
        "where status <> 'running' and ended_at is not null"
        + (" and (ended_at > ? or (ended_at = ? and run_id > ?))" if after else "")
        + " order by ended_at, run_id limit ?",
        [*(since[:1] + since), limit] if after else [limit])
    runs = [r for r in runs if r[1] in graphs]
    if not runs:
        return []
    marks = ", ".join("?" for _ in runs)
    stages: dict[str, list[tuple[str, str, float, int, int]]] = {}
    for run_id, stage, status, seconds, rows_in, rows_out in warehouse.query(
            f"select run_id, stage, status, duration_s, rows_in, rows_out from ops.stage_runs "
            f"where run_id in ({marks}) order by started_at", [r[0] for r in runs]):
        stages.setdefault(run_id, []).append((stage, status, float(seconds or 0), int(rows_in or 0),
                                              int(rows_out or 0)))
    pipelines = sorted({r[1] for r in runs})
    items = [QuarantineItem(*row) for row in warehouse.query(
        f"select {_QUARANTINE_COLUMNS} from ops.quarantine where pipeline in ({', '.join('?' for _ in pipelines)})",
        pipelines)] if warehouse.table_exists("ops", "quarantine") else []
    found = []
    for run_id, pipeline, status, seconds, rows_in, rows_out, error, ended_at in runs:
        open_then = [i for i in items if i.pipeline == pipeline and i.opened_at <= ended_at
                     and (i.resolved_at is None or i.resolved_at > ended_at)]
        outcome = RunOutcome(run_id, pipeline, status, float(seconds or 0), int(rows_in or 0), int(rows_out or 0),
                             error, stages.get(run_id, []), open_then)
        reached = evaluate(graphs[pipeline], outcome, warehouse, specs[pipeline].sources)
        found.append(FinishedRun(reached, Mark(ended_at.isoformat(), run_id)))
    return found
