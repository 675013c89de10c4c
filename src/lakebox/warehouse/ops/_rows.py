"""What every ops table writer shares: the clock, and a bulk append of a few rows."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from lakebox.warehouse.columns import Columns, temp_table

if TYPE_CHECKING:
    from lakebox.warehouse.base import Warehouse


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def append_rows(wh: Warehouse, target: str, columns: Columns) -> None:
    """Bulk-append rows given as columns, {name: (SQL type, values)}, through the
    warehouse's scratch connection (one insert, not a statement per row)."""
    temp_table(wh.scratch(), "lakebox_ops_rows", columns)
    try:
        wh.load_from_scratch("select * from lakebox_ops_rows", target, list(columns))
    finally:
        wh.scratch().execute("drop table if exists lakebox_ops_rows")
