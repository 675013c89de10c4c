"""Transformations: the bundled dbt project and the in-process runner that builds it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.runner import RunContext


def mart_rows(ctx: RunContext, marts: Sequence[str]) -> int:
    """Rows now in the given marts: what a transform stage reports as its output."""
    return sum(int(ctx.warehouse.query(f"select count(*) from {m}")[0][0]) for m in marts)
