"""The warehouse: one interface over embedded DuckDB (default), PostgreSQL and Spark (by URL);
each kind describes itself in `kinds` (dbt profile, what runs around dbt, how to open it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.warehouse.base import SCHEMAS, Warehouse
from lakebox.warehouse.kinds import WarehouseKind, kind_of

if TYPE_CHECKING:
    from lakebox.settings import Settings

__all__ = ["SCHEMAS", "Warehouse", "WarehouseKind", "kind_of", "open_warehouse"]


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    """The configured warehouse. A writer gets its schemas and ops tables put in place; a
    reader (`read_only`, the dashboard) changes nothing and holds no lock between queries."""
    warehouse = kind_of(settings).open(settings, read_only)
    if not read_only:
        warehouse.ensure_schemas()
    return warehouse
