"""An offline journey through the parts that exist today: the stand-in over real HTTP (with
a transient fault), OData paging, pages landed as received in a real lake (same bytes, same
batch), the gate, raw tables and dbt. A re-run with nothing new lands nothing new; a GHO
revision lands only the pages that changed, and staging then holds the revised values while
raw keeps both versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from lakebox.ingest.http import RetryPolicy, get_with_retry
from lakebox.lake.store import Lake
from lakebox.pipelines.orders.api import FaultPlan, serve_in_thread
from lakebox.pipelines.who_gho.api import create_app
from lakebox.pipelines.who_gho.generator import generate_gho
from lakebox.pipelines.who_gho.source import GhoSource, next_request
from lakebox.transform.dbt import run_dbt
from tests.pipelines.who_gho.conftest import (
    COUNTRIES,
    OBSERVATIONS,
    engine_warehouse,
    load_pages,
)

pytestmark = pytest.mark.slow

SIZE = {"countries": 25, "years": 10, "seed": 4}
POLICY = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)


def fetch(url: str, lake: Lake) -> dict[str, list[tuple[str, bytes]]]:
    """Every page of every resource, landed as received: {source: [(batch_id, body), ...]}."""
    landed: dict[str, list[tuple[str, bytes]]] = {}
    source = GhoSource.from_env({"LAKEBOX_WHO_API_URL": url, "LAKEBOX_WHO_PAGE_SIZE": "100"})
    with httpx.Client(timeout=30) as client:
        for resource in source.resources():
            request: Any = resource.params
            while request is not None:
                target = request if isinstance(request, str) else f"{source.base_url}/{resource.path}"
                body = get_with_retry(client, target, {} if isinstance(request, str) else request,
                                      resource.source, POLICY).content
                landed.setdefault(resource.source, []).append((lake.land_batch(resource.source, body, "json").batch_id,
                                                               body))
                request = next_request(orjson.loads(body), request) if resource.paged and isinstance(request, dict) \
                    else None
    return landed


def test_rerun_lands_nothing_new_and_a_revision_replaces_values_in_staging(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    with engine_warehouse("duckdb", tmp_path / "home", request) as (settings, wh):
        with serve_in_thread(create_app(**SIZE, faults=FaultPlan.parse(["500:1"]))) as first:
            landed = fetch(first.url, lake)
            again = fetch(first.url, lake)
        pages = landed["who_gho"]
        assert len(pages) > 2 * 2  # several pages per indicator
        assert again == landed  # same bytes, same batches: nothing new to load
        load_pages(wh, COUNTRIES, [body for _, body in landed["who_gho_countries"]], tmp_path / "p1")
        load_pages(wh, OBSERVATIONS, [body for _, body in pages], tmp_path / "p1")
        run_dbt(settings, wh, ["path:models/who_gho"])
        staged = wh.query("select count(*) from staging.stg_who_observations")[0][0]
        raw = wh.query("select count(*) from raw.who_observations")[0][0]

        with serve_in_thread(create_app(**SIZE, revision=1)) as revised:
            relanded = fetch(revised.url, lake)
        seen = {batch for batch, _ in pages}
        new = [body for batch, body in relanded["who_gho"] if batch not in seen]
        assert 0 < len(new) < len(pages)  # only the pages that carry a revised value
        load_pages(wh, OBSERVATIONS, new, tmp_path / "p2")
        run_dbt(settings, wh, ["path:models/who_gho"])

        expected = {(r["IndicatorCode"], r["SpatialDim"], r["TimeDim"], r["Dim1"]): r["NumericValue"]
                    for records in generate_gho(**SIZE, revision=1).observations.values() for r in records
                    if r["SpatialDimType"] == "COUNTRY"}
        sexes = {"both": "SEX_BTSX", "male": "SEX_MLE", "female": "SEX_FMLE"}
        got = {(i, c, y, sexes[s]): v for i, c, y, s, v in wh.query(
            "select indicator, country_code, year, sex, value from staging.stg_who_observations")}
        assert len(got) == staged == len(expected)
        assert got == pytest.approx(expected)
        assert wh.query("select count(*) from raw.who_observations")[0][0] > raw
        versions = wh.query("select count(*) from (select id from raw.who_observations group by id "
                            "having count(distinct date) = 2) as t")[0][0]
        assert versions > 0  # raw keeps both versions of a revised value
