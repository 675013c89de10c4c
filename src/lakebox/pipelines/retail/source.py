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
from typing import TYPE_CHECKING

import orjson

from lakebox.ingest import files
from lakebox.ingest.files import SEEN_STATE, landing_files, stamp
from lakebox.lake import batch_id_for
from lakebox.pipelines.retail.contract import SOURCE, kind_of
from lakebox.runner import StageResult
from lakebox.warehouse import ops

if TYPE_CHECKING:
    from lakebox.runner import RunContext
    from lakebox.settings import Settings


def landing_url(ctx: RunContext) -> str:
    return f"{ctx.settings.landing.rstrip('/')}/{SOURCE}"


def landing_fingerprint(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Name, size and modification time of every file waiting in retail's landing folder:
    what `lakebox watch` compares to notice a new or corrected drop without reading any file."""
    return files.landing_fingerprint(f"{settings.landing.rstrip('/')}/{SOURCE}", settings.env)


def land_drops(ctx: RunContext) -> StageResult:
    """Copy every file not seen before into raw/retail/ and record it as pending in the ledger."""
    from lakebox.lake.remote import fs_for_url

    url = landing_url(ctx)
    fs, root = fs_for_url(url, ctx.settings.env)
    entries = landing_files(fs, root)
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
        name, stamped = posixpath.basename(entry["name"]), stamp(entry)
        found = kind_of(name)
        if days and found and found[1] and not days[0] <= found[1] <= days[1]:
            continue
        if stamped and seen.get(name) == stamped:  # listed before, unchanged: not even read
            skipped += 1
            continue
        data = bytes(fs.cat_file(entry["name"]))
        seen[name] = stamped
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
