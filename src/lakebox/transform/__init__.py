"""Transformations: the bundled dbt project and the in-process runner that builds it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.stage import RunContext, Stage, StageResult
    from lakebox.warehouse import Warehouse


def mart_rows(ctx: RunContext, marts: Sequence[str]) -> int:
    """Rows now in the given marts: what a transform stage reports as its output."""
    return sum(int(ctx.warehouse.query(f"select count(*) from {m}")[0][0]) for m in marts)


def marts_up_to_date(wh: Warehouse, pipeline: str, sources: Sequence[str], marts: Sequence[str]) -> bool:
    """True when every mart exists and no batch of `sources` loaded since the last good build."""
    if not all(wh.table_exists(*m.split(".")) for m in marts):
        return False
    from lakebox.warehouse.ops import audit, ledger

    built = audit.last_stage_success(wh, pipeline, "transform")
    if built is None:
        return False
    loaded = ledger.last_loaded_at(wh, sources)
    return loaded is None or loaded <= built


VIEWS_STATE = "views_built"  # ops.source_state key (source "dbt"): project digest the views were built from


def selection(selector: str, views_current: bool) -> list[str]:
    """dbt --select arguments for `selector`. A view holds no data, so once built from the
    current project there is nothing to rebuild: leave its model out, keep its tests."""
    if not views_current:
        return [selector]
    return [f"{selector},config.materialized:{kind}" for kind in ("table", "incremental")] + [
        f"{selector},resource_type:test"
    ]


def build_marts(ctx: RunContext, selector: str, sources: Sequence[str], marts: Sequence[str]) -> StageResult:
    """dbt build of `selector`, skipped when nothing arrived since the last good build
    (a no-op run then costs no dbt start-up); views are re-created only when the project
    changed since they were built. `lakebox run --full-refresh` rebuilds everything."""
    from lakebox.stage import StageResult
    from lakebox.transform.dbt import project_signature, run_dbt
    from lakebox.warehouse import ops

    full_refresh = bool(ctx.extras.get("full_refresh"))
    if not full_refresh and marts_up_to_date(ctx.warehouse, ctx.pipeline, sources, marts):
        ctx.log.info("marts up to date: nothing loaded since the last build, dbt skipped", marts=list(marts))
    else:
        project = project_signature(ctx.settings)
        views_current = not full_refresh and ops.get_state(ctx.warehouse, "dbt", f"{VIEWS_STATE}:{selector}") == project
        run_dbt(ctx.settings, ctx.warehouse, selection(selector, views_current), full_refresh=full_refresh)
        if not views_current:
            ops.set_state(ctx.warehouse, "dbt", f"{VIEWS_STATE}:{selector}", project)
    return StageResult(rows_out=mart_rows(ctx, marts))


def transform_stage(selector: str, sources: Sequence[str], marts: Sequence[str]) -> Stage:
    """A pipeline's `transform` stage: build its dbt models (see build_marts)."""
    from lakebox.stage import Stage

    return Stage("transform", lambda ctx: build_marts(ctx, selector, sources, marts))


def snapshot_stage(marts: Sequence[str]) -> Stage:
    """A pipeline's `snapshot` stage: its marts as parquet in the lake, after a good build."""
    from lakebox.lake.snapshots import snapshot_marts
    from lakebox.stage import Stage, StageResult

    def snapshot(ctx: RunContext) -> StageResult:
        rows = snapshot_marts(ctx, marts)
        return StageResult(rows_in=rows, rows_out=rows)

    return Stage("snapshot", snapshot)
