"""The warehouse: one interface over embedded DuckDB (default) and PostgreSQL (by URL)."""

from lakebox.warehouse.base import SCHEMAS, Warehouse, open_warehouse

__all__ = ["SCHEMAS", "Warehouse", "open_warehouse"]
