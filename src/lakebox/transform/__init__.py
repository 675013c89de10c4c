"""Transformations: the bundled dbt project and the in-process runner that builds it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.runner import RunContext, Stage, StageResult
    from lakebox.warehouse import Warehouse


def mart_rows(ctx: RunContext, marts: Sequence[str]) -> int:
    """Rows now in the given marts: what a transform stage reports as its output."""
    return sum(int(ctx.warehouse.query(f"select count(*) from {m}")[0][0]) for m in marts)


def marts_up_to_date(wh: Warehouse, pipeline: str, sources: Sequence[str], marts: Sequence[str]) -> bool:
    """True when every mart exists and no batch of `sources` loaded since the last good build."""
    if not all(wh.table_exists(*m.split(".")) for m in marts):
        return False
    built = wh.query(
        "select max(ended_at) from ops.stage_runs where pipeline = ? and stage = 'transform' and status = 'success'",
        [pipeline],
    )[0][0]
    if built is None:
        return False
    marks = ", ".join("?" for _ in sources)
    loaded = wh.query(
        f"select max(loaded_at) from ops.batches where status = 'loaded' and rows > 0 and source in ({marks})", list(sources)
    )[0][0]
    return loaded is None or loaded <= built


def build_marts(ctx: RunContext, selector: str, sources: Sequence[str], marts: Sequence[str]) -> StageResult:
    """dbt build of `selector`, skipped when nothing arrived since the last good build
    (a no-op run then costs no dbt start-up). `lakebox run --full-refresh` forces it."""
    from lakebox.runner import StageResult
    from lakebox.transform.dbt import run_dbt

    full_refresh = bool(ctx.extras.get("full_refresh"))
    if not full_refresh and marts_up_to_date(ctx.warehouse, ctx.pipeline, sources, marts):
        ctx.log.info("marts up to date: nothing loaded since the last build, dbt skipped", marts=list(marts))
    else:
        run_dbt(ctx.settings, ctx.warehouse, [selector], full_refresh=full_refresh)
    return StageResult(rows_out=mart_rows(ctx, marts))


def transform_stage(selector: str, sources: Sequence[str], marts: Sequence[str]) -> Stage:
    """A pipeline's `transform` stage: build its dbt models (see build_marts)."""
    from lakebox.runner import Stage

    return Stage("transform", lambda ctx: build_marts(ctx, selector, sources, marts))
