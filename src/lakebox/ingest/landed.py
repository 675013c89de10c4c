"""Before a source's pending batches are read, each lake object must still be the bytes
the ledger recorded when it landed (sha256 and size). A missing or changed object stops
the source before anything of it loads, naming every such object and the ways out; it is
never loaded and never quarantined as if the source had sent it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.errors import LakeIntegrityError
from lakebox.lake.verify import Difference, Recorded, differences
from lakebox.warehouse import ops

if TYPE_CHECKING:
    from lakebox.lake import Lake
    from lakebox.stage import RunContext

_VERIFIED = "verified_batches"  # ctx.extras: batches already checked in this run

WAYS_OUT = (
    "To settle each: put the original bytes back with `lakebox lake restore BATCH_ID FILE` (checked against "
    "the recorded sha256; for retail, the dropped file if the landing folder still holds it); or, when they "
    "are gone for good, `lakebox lake forget-batch BATCH_ID --reason TEXT` (the batch is marked lost in "
    "ops.batches with the reason and never loads) and have the source send that range again. "
    "`lakebox lake verify` checks the whole lake."
)


def check_landed(ctx: RunContext, source: str) -> None:
    """Raise LakeIntegrityError when a pending batch of `source` is missing or changed."""
    done: set[str] = ctx.extras.setdefault(_VERIFIED, set())
    pending = [row for row in ops.ledger.landed_digests(ctx.warehouse, source) if row[0] not in done]
    if not pending:
        return
    found = differences(ctx.lake, [Recorded(key, sha, size, batch) for batch, key, sha, size in pending])
    if found:
        raise LakeIntegrityError(describe(ctx.lake, source, found))
    done.update(row[0] for row in pending)
    ctx.log.info("landed batches verified", source=source, batches=len(pending))


def describe(lake: Lake, source: str, found: list[Difference]) -> str:
    lines = "".join(f"\n  - {d.describe(lake)}" for d in found)
    return (f"source {source}: {len(found)} landed batch(es) in the lake are not what the ledger recorded when "
            f"they landed, so nothing of this source loads until each is settled:{lines}\n{WAYS_OUT}")
