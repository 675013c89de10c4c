"""The warehouse: one interface over embedded DuckDB (default) and PostgreSQL (by URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.warehouse.base import SCHEMAS, Warehouse

if TYPE_CHECKING:
    from lakebox.settings import Settings

__all__ = ["SCHEMAS", "Warehouse", "open_warehouse"]


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    """The configured warehouse. A writer gets its schemas and ops tables put in place; a
    reader (`read_only`, the dashboard) changes nothing and holds no lock between queries."""
    if settings.warehouse_kind == "postgres":
        from lakebox.warehouse.postgres import PostgresWarehouse

        warehouse: Warehouse = PostgresWarehouse(settings.warehouse, env=settings.env, read_only=read_only)
    else:
        from lakebox.warehouse.duckdb import DuckDBWarehouse

        warehouse = DuckDBWarehouse(settings.warehouse, read_only=read_only)
    if not read_only:
        warehouse.ensure_schemas()
    return warehouse
