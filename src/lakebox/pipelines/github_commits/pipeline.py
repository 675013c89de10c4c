"""The load stage: each landed list-commits page through the gate (`CommitPageReader`
flattens it into the contract's columns) into raw.github_commits, or to quarantine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from lakebox.runner import RunContext, StageResult

HINT: Final = (
    "fix the source (or the contract in lakebox/pipelines/github_commits/contract.py if GitHub's change is "
    "intended); the original response is kept in quarantine/ and raw/"
)


def load(ctx: RunContext) -> StageResult:
    """Check each landed page against the contract; load it, or quarantine it."""
    from lakebox.ingest.batches import load_pending_batches
    from lakebox.pipelines.github_commits.contract import CONTRACT
    from lakebox.pipelines.github_commits.reader import CommitPageReader

    return load_pending_batches(ctx, CONTRACT, CommitPageReader(), hint=HINT)
