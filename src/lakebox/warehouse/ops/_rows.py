"""What every ops table writer shares: the clock, and a bulk append of a few rows."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakebox.warehouse.base import Warehouse


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def append_arrow(wh: Warehouse, target: str, table: Any) -> None:
    """Bulk-append an Arrow table through the warehouse's scratch connection."""
    scratch = wh.scratch()
    scratch.complete()  # DuckDB will not register while a result is unread
    scratch.register("lakebox_ops_rows", table)
    try:
        wh.load_from_scratch("select * from lakebox_ops_rows", target, table.column_names)
    finally:
        scratch.unregister("lakebox_ops_rows")
