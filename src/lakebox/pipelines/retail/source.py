"""The retail source connector: land each new file of `$LAKEBOX_LANDING/retail/` as received.

A file's identity is its content: bytes already in the ledger (loaded, quarantined or
pending) are skipped, so re-dropping a file is a no-op, and a corrected file under the
same name is a new batch, a new version of that file. A file listed with the same size and
modification time as when it was last read is not read again (ops.source_state keeps
them), so a daily run reads only the new day's files. Landing files are left where the
store systems put them; the lake keeps its own write-once copy.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from typing import TYPE_CHECKING, Any

import orjson

from lakebox.lake import batch_id_for
from lakebox.pipelines.retail.contract import SOURCE, kind_of
from lakebox.runner import StageResult
from lakebox.warehouse import ops

if TYPE_CHECKING:
    from lakebox.runner import RunContext
    from lakebox.settings import Settings

SEEN_STATE = "landing_seen"  # file name -> size:mtime when last read, so unchanged files are not re-read


def _stamp(entry: dict[str, object]) -> str:
    """Size and modification time (or ETag) of a listed file; empty when the listing has neither."""
    changed = entry.get("mtime") or entry.get("LastModified") or entry.get("ETag")
    return f"{entry.get('size')}:{changed}" if changed else ""


def landing_url(ctx: RunContext) -> str:
    return f"{ctx.settings.landing.rstrip('/')}/{SOURCE}"


def _landing_files(fs: Any, root: str) -> list[dict[str, Any]] | None:
    """The files waiting in the landing folder (None: no folder), listed afresh: fsspec keeps
    S3 listings per filesystem object, and a long-lived watcher must see each new drop.
    Dot-files are files still being written (write aside, then rename into place)."""
    fs.invalidate_cache(root)
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        return None
    return sorted(
        (e for e in entries if e.get("type") == "file" and not posixpath.basename(e["name"]).startswith(".")),
        key=lambda e: e["name"],
    )


def landing_fingerprint(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Name, size and modification time of every file waiting in the landing folder: what
    `lakebox watch` compares to notice a new or corrected drop without reading any file."""
    from lakebox.lake.remote import fs_for_url

    fs, root = fs_for_url(f"{settings.landing.rstrip('/')}/{SOURCE}", settings.env)
    return tuple((posixpath.basename(e["name"]), _stamp(e)) for e in _landing_files(fs, root) or [])


def land_drops(ctx: RunContext) -> StageResult:
    """Copy every file not seen before into raw/retail/ and record it as pending in the ledger."""
    from lakebox.lake.remote import fs_for_url

    url = landing_url(ctx)
    fs, root = fs_for_url(url, ctx.settings.env)
    entries = _landing_files(fs, root)
    if entries is None:
        ctx.log.info("no retail landing folder yet", landing=url)
        return StageResult()
    wh = ctx.warehouse
    seen: dict[str, str] = orjson.loads(ops.get_state(wh, SOURCE, SEEN_STATE) or "{}")
    known = ops.ledger.known_batches(wh, SOURCE)
    now = dt.datetime.now(dt.UTC)
    manifests = []
    skipped = 0
    # a scheduler's day partitions (first, last): those days' files, and undated ones, only
    days: tuple[str, str] | None = ctx.extras.get("days")
    for entry in entries:
        name, stamp = posixpath.basename(entry["name"]), _stamp(entry)
        found = kind_of(name)
        if days and found and found[1] and not days[0] <= found[1] <= days[1]:
            continue
        if stamp and seen.get(name) == stamp:  # listed before, unchanged: not even read
            skipped += 1
            continue
        data = bytes(fs.cat_file(entry["name"]))
        seen[name] = stamp
        if batch_id_for(SOURCE, data) in known:
            skipped += 1
            continue
        meta = {
            "file": name,
            "kind": found[0].name if found else None,
            "date": found[1] if found else None,
            "received_at": now.replace(tzinfo=None).isoformat(sep=" "),
        }
        ext = name.rsplit(".", 1)[-1] if "." in name else "bin"
        manifest = ctx.lake.land_batch(SOURCE, data, ext, rows=data.rstrip(b"\r\n").count(b"\n"), meta=meta,
                                       fetched_at=now, durable=False)
        known.add(manifest.batch_id)
        manifests.append(manifest)
    ctx.lake.sync()  # one flush for every copy, before the ledger relies on them
    with wh.transaction():
        landed = ops.record_landed_many(wh, manifests, ctx.run_id)
        ops.set_state(wh, SOURCE, SEEN_STATE, orjson.dumps(seen).decode())
    ctx.log.info("retail files landed", landing=url, new=landed, already_seen=skipped)
    return StageResult(rows_in=landed, rows_out=landed)
