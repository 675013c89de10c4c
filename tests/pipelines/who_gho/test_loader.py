"""The OData page reader inside today's shared loader (`load_pending_batches`): landed GHO
pages load into the raw tables, and a bad page is quarantined and named, never loaded.
(The rules beyond the contract join when the shared gate takes extra checks.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from lakebox.ingest.batches import load_pending_batches
from lakebox.lake.store import Lake
from lakebox.pipelines.who_gho.api import _spoil
from lakebox.pipelines.who_gho.contract import FIELDS
from lakebox.pipelines.who_gho.generator import generate_gho
from lakebox.pipelines.who_gho.pages import ODataPageReader
from lakebox.runner import RunContext
from lakebox.warehouse import ops
from tests.pipelines.who_gho.conftest import (
    COUNTRIES,
    OBSERVATIONS,
    engine_warehouse,
    page,
)

HINT = "fix the source; the original page is kept in quarantine/ and raw/"


def land(ctx: RunContext, source: str, body: bytes) -> str:
    rows = len(orjson.loads(body)["value"]) if body.endswith(b"}") else 0
    manifest = replace(ctx.lake.land_batch(source, body, "json"), rows=rows)
    ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
    return manifest.batch_id


def test_pages_load_through_the_shared_loader_and_bad_ones_are_quarantined(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    gho = generate_gho(countries=15, years=5, seed=9)
    records = gho.observations["WHOSIS_000001"]
    with engine_warehouse("duckdb", tmp_path / "home", request) as (settings, wh):
        ctx = RunContext(settings=settings, lake=Lake(str(tmp_path / "lake")), warehouse=wh, run_id="run-1",
                         pipeline="who_gho")
        land(ctx, COUNTRIES.source, page(gho.countries))
        good = [land(ctx, OBSERVATIONS.source, page(records[i:i + 100])) for i in range(0, 200, 100)]
        negative = land(ctx, OBSERVATIONS.source, _spoil(page(records[200:300]), "negative_amount"))
        broken = land(ctx, OBSERVATIONS.source, page(records[300:])[:500])

        loaded = load_pending_batches(ctx, COUNTRIES, ODataPageReader(renames=FIELDS), HINT)
        assert loaded.rows_out == 15 and not ctx.quarantined
        loaded = load_pending_batches(ctx, OBSERVATIONS, ODataPageReader(renames=FIELDS), HINT)

        assert loaded.rows_out == 200
        assert wh.query("select count(*), count(distinct batch_id) from raw.who_observations") == [(200, 2)]
        status = dict(wh.query("select batch_id, status from ops.batches where source = 'who_gho'"))
        assert status == {good[0]: "loaded", good[1]: "loaded", negative: "quarantined", broken: "quarantined"}
        rules = {item.batch_id: item.rules for item in ctx.quarantined}
        assert set(rules) == {negative, broken}
        assert '"min"' in rules[negative] and '"numeric_value"' in rules[negative]
        assert '"parse"' in rules[broken]
        errors = [k for k in ctx.lake.list("quarantine") if k.endswith(".errors.json")]
        assert len(errors) == 2
        typed = wh.query("select id, time_dim, dim1, numeric_value, date from raw.who_observations "
                         "order by id limit 1")[0]
        assert typed[:3] == (records[0]["Id"], records[0]["TimeDim"], records[0]["Dim1"])
        assert typed[3] == pytest.approx(records[0]["NumericValue"])
