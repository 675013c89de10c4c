"""github_commits: GitHub (or the stand-in) → raw lake → raw.github_commits → stg_commits →
commit_activity, commit_type_trends, ml.commit_features.

The fetch stage is the generic REST source configured by `source`; the ML stages are
`lakebox.ml`'s. This module holds what is GitHub's own: the load through the gate with the
page reader, and the dbt selection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from lakebox.runner import RunContext, Stage, StageResult

NAME: Final = "github_commits"
DBT_SELECTOR: Final = "path:models/github_commits"
MARTS: Final = ("analytics.commit_activity", "analytics.commit_type_trends", "ml.commit_features")
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


def transform_stage() -> Stage:
    """Build stg_commits, the marts and ml.commit_features (skipped when nothing new loaded)."""
    from lakebox.pipelines.github_commits.contract import CONTRACT
    from lakebox.transform import transform_stage as build

    return build(DBT_SELECTOR, [CONTRACT.source], MARTS)
