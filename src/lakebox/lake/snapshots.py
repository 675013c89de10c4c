"""Export marts to the lake as parquet after a good run: snapshots/<model>/snapshot_date=D/."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.stage import RunContext


def snapshot_marts(ctx: RunContext, models: Sequence[str]) -> int:
    """Write each `schema.model` as one parquet file for today; returns rows written."""
    import pyarrow.parquet as pq

    day = dt.date.today().isoformat()
    total = 0
    for model in models:
        name = model.split(".")[-1]
        table = ctx.warehouse.query_arrow(f"select * from {model}")
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        key = f"snapshots/{name}/snapshot_date={day}/{name}.parquet"
        ctx.lake.overwrite(key, buffer.getvalue())
        ctx.log.info("snapshot written", model=model, rows=table.num_rows, key=key)
        total += table.num_rows
    return total
