"""Creating schemas and tables safely when several processes open a new warehouse at once.

PostgreSQL's `create ... if not exists` checks the catalog, then inserts: two sessions
creating the same schema or table together can both pass the check, and one fails with
`UniqueViolation ... pg_type_typname_nsp_index`. Every lakebox DDL on PostgreSQL therefore
runs in a transaction holding one advisory lock: the second process waits, then finds the
first one's table. Other engines run the statements as they are (DuckDB has one writer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.warehouse.base import Warehouse

# the key of lakebox's DDL advisory lock: "lakebox" as a number (any bigint; fixed for all versions)
DDL_LOCK_KEY = int.from_bytes(b"lakebox", "big")


def hold_ddl_lock(warehouse: Warehouse) -> None:
    """Wait for, then hold until the current transaction ends, lakebox's DDL lock (PostgreSQL only)."""
    if warehouse.kind == "postgres":
        warehouse.execute(f"select pg_advisory_xact_lock({DDL_LOCK_KEY})")


def create_if_missing(warehouse: Warehouse, statements: Sequence[str]) -> None:
    """Run `create ... if not exists` statements so concurrent openers do not race: on
    PostgreSQL in one transaction under the DDL lock (so a caller should check what exists
    first and pass only what is missing, keeping the lock rare and short)."""
    if not statements:
        return
    if warehouse.kind != "postgres":
        for statement in statements:
            warehouse.execute(statement)
        return
    with warehouse.transaction():
        hold_ddl_lock(warehouse)
        for statement in statements:
            warehouse.execute(statement)
