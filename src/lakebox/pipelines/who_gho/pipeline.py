"""who_gho's stages of its own: fetch GHO pages into the raw lake; load them into the raw
tables through the gate; and the shared ML lifecycle's predict, train and drift for the
life-expectancy model (`model.py`). The spec (`__init__.py`) puts transform between.

The country dimension loads first: it decides which country codes are known. Then each
pending observation page meets its contract's checks and the rules beyond it
(`gate.beyond_contract`: a reason for every missing value, known countries) in the one gate
engine, which loads or quarantines it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.errors import SourceFailedError
from lakebox.runner import RunContext, StageResult

if TYPE_CHECKING:
    from lakebox.ingest.batches import ExtraChecks

HINT = ("fix the source (or the contract in lakebox/pipelines/who_gho/contract.py if the change is intended); "
        "the original response is kept in quarantine/ and raw/")


def fetch(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.who_gho.source import fetch_gho

    return fetch_gho(ctx)


def predict(ctx: RunContext) -> StageResult | None:
    from lakebox.ml import predict_stage
    from lakebox.pipelines.who_gho.model import SPEC

    return predict_stage(SPEC)(ctx)


def train(ctx: RunContext) -> StageResult | None:
    from lakebox.ml import train_stage
    from lakebox.pipelines.who_gho.model import SPEC

    return train_stage(SPEC)(ctx)


def drift(ctx: RunContext) -> StageResult | None:
    from lakebox.ml import drift_stage
    from lakebox.pipelines.who_gho.model import SPEC

    return drift_stage(SPEC)(ctx)


def load(ctx: RunContext) -> StageResult:
    from lakebox.ingest.batches import load_pending_batches
    from lakebox.ingest.json_pages import PageReader
    from lakebox.pipelines.who_gho.contract import COUNTRIES, FIELDS, OBSERVATIONS

    countries = load_pending_batches(ctx, COUNTRIES, PageReader("$.value", renames=FIELDS), HINT)
    observations = load_pending_batches(ctx, OBSERVATIONS, PageReader("$.value", renames=FIELDS), HINT,
                                        extra_checks=rules_beyond_contract(ctx))
    return StageResult(rows_in=countries.rows_in + observations.rows_in,
                       rows_out=countries.rows_out + observations.rows_out)


def rules_beyond_contract(ctx: RunContext) -> ExtraChecks:
    """The observation pages' rules beyond the contract, against the loaded country
    dimension; refuses while pages wait and no country dimension has loaded."""
    from lakebox.ingest.landed import check_landed
    from lakebox.pipelines.who_gho.contract import SOURCE
    from lakebox.pipelines.who_gho.gate import beyond_contract, loaded_countries
    from lakebox.warehouse import ops

    check_landed(ctx, SOURCE)
    known = loaded_countries(ctx.warehouse)
    if known is None and (pending := ops.pending_batches(ctx.warehouse, SOURCE)):
        raise SourceFailedError(f"source {SOURCE}: no country dimension has been loaded yet, so country codes cannot "
                                f"be checked; {len(pending)} page(s) stay pending until GHO's "
                                "/DIMENSION/COUNTRY/DimensionValues loads")
    return lambda con, relation: beyond_contract(con, relation, known)
