"""who_gho's stages of its own: fetch GHO pages into the raw lake; load them into the raw
tables through the gate; and the shared ML lifecycle's predict, train and drift for the
life-expectancy model (`model.py`). The spec (`__init__.py`) puts transform between.

The country dimension loads first: it decides which country codes are known. Then each
pending observation page meets the rules beyond its contract (`gate.beyond_contract`: a
reason for every missing value, known countries) and, if it passes, the shared loader's
contract checks; a page that fails either is quarantined through the one gate path.
"""

from __future__ import annotations

from lakebox.errors import SourceFailedError
from lakebox.runner import RunContext, StageResult

HINT = ("fix the source (or the contract in lakebox/pipelines/who_gho/contract.py if the change is intended); "
        "the original response is kept in quarantine/ and raw/")
_RELATION = "lakebox_who_batch"


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
    if not gate_beyond_contract(ctx):
        return countries
    observations = load_pending_batches(ctx, OBSERVATIONS, PageReader("$.value", renames=FIELDS), HINT)
    return StageResult(rows_in=countries.rows_in + observations.rows_in,
                       rows_out=countries.rows_out + observations.rows_out)


def gate_beyond_contract(ctx: RunContext) -> bool:
    """Quarantine each pending observation page that breaks a rule beyond the contract;
    False when the gate stopped the source (fail-fast). A page that cannot be read is left
    to the loader, which names it."""
    import duckdb

    from lakebox.ingest.json_pages import PageReader
    from lakebox.ingest.landed import check_landed
    from lakebox.pipelines.who_gho.contract import FIELDS, SOURCE
    from lakebox.pipelines.who_gho.gate import beyond_contract, loaded_countries
    from lakebox.quality.gate import FAIL_FAST, describe_failure, failed, policy_for, quarantine
    from lakebox.warehouse import ops

    wh = ctx.warehouse
    check_landed(ctx, SOURCE)
    pending = ops.pending_batches(wh, SOURCE)
    if not pending:
        return True
    known = loaded_countries(wh)
    if known is None:
        raise SourceFailedError(f"source {SOURCE}: no country dimension has been loaded yet, so country codes cannot "
                                f"be checked; {len(pending)} page(s) stay pending until GHO's "
                                "/DIMENSION/COUNTRY/DimensionValues loads")
    policy = policy_for(ctx.settings, ctx.pipeline)
    reader = PageReader("$.value", renames=FIELDS)
    con = wh.scratch()
    ctx.lake.register_with(con)
    reader.prepare(con, [ctx.lake.uri(key) for _, key, _ in pending])
    for batch_id, key, _ in pending:
        try:
            con.execute(f"create or replace temp table {_RELATION} as {reader.select_sql(con, ctx.lake.uri(key))}")
        except duckdb.Error:
            continue
        results = beyond_contract(con, _RELATION, known)
        con.execute(f"drop table {_RELATION}")
        if not failed(results):
            continue
        with wh.transaction():
            ops.record_dq_results(wh, ctx.run_id, batch_id, SOURCE, results)
            quarantine(ctx, source=SOURCE, batch_id=batch_id, lake_key=key, results=results, hint=HINT)
        if policy == FAIL_FAST:
            ctx.stop_at_gate(f"fail-fast policy: stopped at batch {batch_id} of source {SOURCE}: "
                             + "; ".join(describe_failure(SOURCE, f"batch {batch_id}", r) for r in failed(results)))
            return False
    return True
