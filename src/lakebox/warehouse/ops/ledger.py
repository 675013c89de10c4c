"""The ingestion ledger, ops.batches: every landed batch and what became of it.

Status: landed (pending), loaded, quarantined, superseded (a newer version of the same
file replaced it before it loaded), or lost (its lake object went missing or changed and a
person said so with `lakebox lake forget-batch`). `error` holds the failed rules, or for a
lost batch the reason, who and when, as JSON text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from lakebox.warehouse.ops._rows import append_rows, utcnow

if TYPE_CHECKING:
    from lakebox.lake import BatchManifest
    from lakebox.warehouse.base import Warehouse

LANDED, LOADED, QUARANTINED, SUPERSEDED, LOST = "landed", "loaded", "quarantined", "superseded", "lost"

DDL = (
    """create table if not exists ops.batches (
        batch_id varchar primary key, source varchar not null, lake_path varchar not null,
        sha256 varchar not null, bytes bigint, rows bigint, status varchar not null,
        landed_at timestamp not null, loaded_at timestamp, run_id varchar, error varchar,
        meta varchar)""",
)


def record_landed(wh: Warehouse, manifest: BatchManifest, run_id: str) -> bool:
    """Add a landed batch to the ledger. False when the ledger already knows it."""
    return record_landed_many(wh, [manifest], run_id) == 1


def record_landed_many(wh: Warehouse, manifests: Sequence[BatchManifest], run_id: str) -> int:
    """Add many landed batches in one bulk insert (not a statement per batch); batches the
    ledger already knows are skipped. Returns how many were added. Call inside a transaction
    to make it atomic with other ledger writes. They are ordered as given."""
    known = set(batch_meta(wh, [m.batch_id for m in manifests]))
    fresh = list({m.batch_id: m for m in manifests if m.batch_id not in known}.values())
    if not fresh:
        return 0
    now = utcnow()
    append_rows(wh, "ops.batches", {
        "batch_id": ("varchar", [m.batch_id for m in fresh]),
        "source": ("varchar", [m.source for m in fresh]),
        "lake_path": ("varchar", [m.key for m in fresh]),
        "sha256": ("varchar", [m.sha256 for m in fresh]),
        "bytes": ("bigint", [m.bytes for m in fresh]),
        "rows": ("bigint", [m.rows for m in fresh]),
        "status": ("varchar", [LANDED] * len(fresh)),
        # a microsecond apart, so the ledger's order (landed_at, then id) is the order given
        "landed_at": ("timestamp", [now + dt.timedelta(microseconds=i) for i in range(len(fresh))]),
        "run_id": ("varchar", [run_id] * len(fresh)),
        "meta": ("varchar", [orjson.dumps(m.meta).decode() for m in fresh]),
    })
    return len(fresh)


def batch_meta(wh: Warehouse, batch_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The meta each known batch was landed with (file name, request, ...), by batch id."""
    found: dict[str, dict[str, Any]] = {}
    ids = list(dict.fromkeys(batch_ids))
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        marks = ", ".join("?" for _ in chunk)
        for batch_id, meta in wh.query(f"select batch_id, meta from ops.batches where batch_id in ({marks})", chunk):
            found[batch_id] = orjson.loads(meta or "{}")
    return found


def batch_rows(wh: Warehouse, batch_ids: Sequence[str]) -> dict[str, int]:
    """The rows each known batch was landed with, where the source counted them, by batch id."""
    ids = list(dict.fromkeys(batch_ids))
    found: dict[str, int] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        marks = ", ".join("?" for _ in chunk)
        found |= {batch_id: int(rows) for batch_id, rows in wh.query(
            f"select batch_id, rows from ops.batches where batch_id in ({marks}) and rows is not null", chunk)}
    return found


def known_batches(wh: Warehouse, source: str) -> set[str]:
    return {r[0] for r in wh.query("select batch_id from ops.batches where source = ?", [source])}


def pending_batches(wh: Warehouse, source: str) -> list[tuple[str, str, str]]:
    """(batch_id, lake_path, meta) of landed batches not yet loaded or quarantined, oldest first."""
    return [
        (r[0], r[1], r[2])
        for r in wh.query(
            "select batch_id, lake_path, meta from ops.batches where source = ? and status = 'landed' "
            "order by landed_at, batch_id",
            [source],
        )
    ]


def landed_digests(wh: Warehouse, source: str) -> list[tuple[str, str, str, int | None]]:
    """(batch_id, lake_path, sha256, bytes) of the source's pending batches: what each
    object must still be before it loads."""
    return [(r[0], r[1], r[2], r[3]) for r in wh.query(
        "select batch_id, lake_path, sha256, bytes from ops.batches where source = ? and status = 'landed'", [source])]


def recorded_batches(wh: Warehouse, source: str | None = None) -> list[tuple[Any, ...]]:
    """(batch_id, source, lake_path, sha256, bytes, status, error) of every batch, or one source's."""
    where, params = ("where source = ?", [source]) if source else ("", [])
    return wh.query(f"select batch_id, source, lake_path, sha256, bytes, status, error from ops.batches {where} "
                    "order by source, landed_at, batch_id", params)


def get_batch(wh: Warehouse, batch_id: str) -> tuple[Any, ...] | None:
    """(batch_id, source, lake_path, sha256, bytes, status, error) of one batch, None when unknown."""
    rows = wh.query("select batch_id, source, lake_path, sha256, bytes, status, error from ops.batches "
                    "where batch_id = ?", [batch_id])
    return rows[0] if rows else None


def mark_lost(wh: Warehouse, batch_id: str, reason: str, by: str, found: str) -> None:
    """A person's word that a batch's lake object is gone for good: it never loads, and
    the ledger keeps why, who, when, what was found and the status it had."""
    status = wh.query("select status from ops.batches where batch_id = ?", [batch_id])[0][0]
    note = {"lost": reason, "by": by, "at": utcnow().isoformat(sep=" "), "found": found, "was": status}
    wh.execute("update ops.batches set status = ?, error = ? where batch_id = ?",
               [LOST, orjson.dumps(note).decode(), batch_id])


def last_loaded_at(wh: Warehouse, sources: Sequence[str]) -> Any:
    """When a batch with rows of any of `sources` was last loaded (None: never)."""
    marks = ", ".join("?" for _ in sources)
    return wh.query(
        f"select max(loaded_at) from ops.batches where status = 'loaded' and rows > 0 and source in ({marks})",
        list(sources),
    )[0][0]


def mark_batch(wh: Warehouse, batch_id: str, status: str, rows: int | None = None, error: str | None = None) -> None:
    wh.execute(
        "update ops.batches set status = ?, loaded_at = ?, rows = coalesce(?, rows), error = ? where batch_id = ?",
        [status, utcnow(), rows, error, batch_id],
    )


def mark_batches(wh: Warehouse, batch_ids: Sequence[str], status: str) -> None:
    """`mark_batch` for many batches at once (rows keep the count recorded when landed)."""
    now = utcnow()
    for start in range(0, len(batch_ids), 1000):
        chunk = list(batch_ids[start:start + 1000])
        marks = ", ".join("?" for _ in chunk)
        wh.execute(
            f"update ops.batches set status = ?, loaded_at = ?, error = null where batch_id in ({marks})",
            [status, now, *chunk],
        )


def mark_loaded(wh: Warehouse, rows_by_batch: Mapping[str, int]) -> None:
    """Mark many batches loaded, each with the rows it loaded, in one statement per 1000."""
    now, items = utcnow(), list(rows_by_batch.items())
    for start in range(0, len(items), 1000):
        chunk = items[start:start + 1000]
        values = ", ".join("(?, ?)" for _ in chunk)
        wh.execute(  # a CTE, not `(values ...) as v(id, n)`: SQLite (Spark's ops store) reads only this
            f"with v(id, n) as (values {values}) "
            f"update ops.batches set status = ?, loaded_at = ?, rows = v.n, error = null from v where batch_id = v.id",
            [*(x for pair in chunk for x in pair), LOADED, now],
        )


def reopen(wh: Warehouse, batch_id: str, meta: Mapping[str, Any]) -> bool:
    """A quarantined batch back to landed (pending) with new meta: for input refused for
    something other than its bytes (a file's name), which the same bytes under a better name
    put right. Its open item stays open until the gate loads it. False when not quarantined."""
    rows = wh.query("select count(*) from ops.batches where batch_id = ? and status = ?", [batch_id, QUARANTINED])
    if not rows[0][0]:
        return False
    wh.execute(
        "update ops.batches set status = ?, loaded_at = null, error = null, meta = ? where batch_id = ?",
        [LANDED, orjson.dumps(dict(meta)).decode(), batch_id],
    )
    return True


def quarantined_batches(wh: Warehouse) -> list[tuple[Any, ...]]:
    """(batch_id, source, error, rows, quarantined_at, landed_at, lake_path, run_id), newest first."""
    return wh.query(
        "select batch_id, source, error, rows, loaded_at as quarantined_at, landed_at, lake_path, run_id "
        "from ops.batches where status = 'quarantined' order by loaded_at desc, batch_id"
    )
