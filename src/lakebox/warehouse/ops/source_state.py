"""ops.source_state: cursors and watermarks, one value per source and key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.warehouse.ops._rows import utcnow

if TYPE_CHECKING:
    from lakebox.warehouse.base import Warehouse

DDL = (
    """create table if not exists ops.source_state (
        source varchar not null, state_key varchar not null, value varchar,
        updated_at timestamp not null, primary key (source, state_key))""",
)


def get_state(wh: Warehouse, source: str, key: str) -> str | None:
    rows = wh.query("select value from ops.source_state where source = ? and state_key = ?", [source, key])
    return rows[0][0] if rows else None


def set_state(wh: Warehouse, source: str, key: str, value: str) -> None:
    with wh.transaction():
        wh.execute("delete from ops.source_state where source = ? and state_key = ?", [source, key])
        wh.execute(
            "insert into ops.source_state (source, state_key, value, updated_at) values (?, ?, ?, ?)",
            [source, key, value, utcnow()],
        )
