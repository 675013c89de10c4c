"""ops.quarantine: input that failed its gate, open until a person or a correction settles it.

An item is `open` from the run that quarantined it until a corrected version of the same
input loads (`resolved`, with the batch that superseded it) or a person dismisses it with
a reason (`dismissed`). While a pipeline has open items its runs end `partial`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakebox.warehouse.ops._rows import utcnow

if TYPE_CHECKING:
    import datetime as dt

    from lakebox.warehouse.base import Warehouse

OPEN, RESOLVED, DISMISSED = "open", "resolved", "dismissed"

DDL = (
    """create table if not exists ops.quarantine (
        id varchar primary key, source varchar not null, pipeline varchar not null,
        batch_id varchar not null, item varchar not null, lake_path varchar not null,
        quarantine_path varchar not null, rules varchar not null, status varchar not null,
        opened_at timestamp not null, opened_run_id varchar not null, resolved_at timestamp,
        resolved_by varchar, reason varchar, superseded_by_batch varchar)""",
)

_COLUMNS = ("id, source, pipeline, batch_id, item, lake_path, quarantine_path, rules, status, opened_at, "
            "opened_run_id, resolved_at, resolved_by, reason, superseded_by_batch")


@dataclass(frozen=True)
class QuarantineItem:
    """One row of ops.quarantine. `rules` is the failed rules as JSON text."""

    id: str
    source: str
    pipeline: str
    batch_id: str
    item: str
    lake_path: str
    quarantine_path: str
    rules: str
    status: str
    opened_at: dt.datetime
    opened_run_id: str
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    reason: str | None = None
    superseded_by_batch: str | None = None


def open_item(
    wh: Warehouse, *, source: str, pipeline: str, batch_id: str, item: str, lake_path: str,
    quarantine_path: str, rules: str, run_id: str,
) -> QuarantineItem:
    """Record a newly quarantined item as open; returns it with its new id."""
    found = QuarantineItem(
        id=f"q{uuid.uuid4().hex[:8]}", source=source, pipeline=pipeline, batch_id=batch_id, item=item,
        lake_path=lake_path, quarantine_path=quarantine_path, rules=rules, status=OPEN, opened_at=utcnow(),
        opened_run_id=run_id,
    )
    wh.execute(
        f"insert into ops.quarantine ({_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, null, null, null)",
        [found.id, source, pipeline, batch_id, item, lake_path, quarantine_path, rules, OPEN, found.opened_at,
         run_id],
    )
    return found


def items(
    wh: Warehouse, *, pipeline: str | None = None, source: str | None = None, include_closed: bool = False
) -> list[QuarantineItem]:
    """Quarantined items, oldest first; only open ones unless `include_closed`."""
    where, params = ["1 = 1"], []
    if not include_closed:
        where.append("status = ?")
        params.append(OPEN)
    if pipeline:
        where.append("pipeline = ?")
        params.append(pipeline)
    if source:
        where.append("source = ?")
        params.append(source)
    rows = wh.query(f"select {_COLUMNS} from ops.quarantine where {' and '.join(where)} order by opened_at, id", params)
    return [QuarantineItem(*row) for row in rows]


def open_counts(wh: Warehouse) -> dict[str, int]:
    """Open items per source."""
    return {str(source): int(count) for source, count in
            wh.query("select source, count(*) from ops.quarantine where status = 'open' group by 1")}


def get(wh: Warehouse, item_id: str) -> QuarantineItem | None:
    rows = wh.query(f"select {_COLUMNS} from ops.quarantine where id = ?", [item_id])
    return QuarantineItem(*rows[0]) if rows else None


def resolve(wh: Warehouse, item_ids: Sequence[str], *, by_batch: str, run_id: str) -> None:
    """Close open items that a corrected version (`by_batch`) replaced."""
    for item_id in item_ids:
        wh.execute(
            "update ops.quarantine set status = ?, resolved_at = ?, resolved_by = ?, superseded_by_batch = ?, "
            "reason = ? where id = ? and status = ?",
            [RESOLVED, utcnow(), run_id, by_batch, "a corrected version loaded", item_id, OPEN],
        )


def dismiss(wh: Warehouse, item_id: str, *, reason: str, by: str) -> None:
    """Close an open item by a person's decision; the reason is kept."""
    wh.execute(
        "update ops.quarantine set status = ?, resolved_at = ?, resolved_by = ?, reason = ? "
        "where id = ? and status = ?",
        [DISMISSED, utcnow(), by, reason, item_id, OPEN],
    )

