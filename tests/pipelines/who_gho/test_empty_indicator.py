"""An indicator GHO answers with no rows is not landed and forgotten: its response gets a
ledger row (loaded, 0 rows) and a warning, and the other indicator still loads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from lakebox.ingest.standin import serve_in_thread
from lakebox.lake import Lake
from lakebox.lake.verify import verify_lake
from lakebox.pipelines.who_gho.api import create_app
from lakebox.pipelines.who_gho.generator import generate_gho
from lakebox.pipelines.who_gho.pipeline import fetch, load
from lakebox.runner import Pipeline, Stage, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse


def test_an_indicator_without_rows_is_recorded_and_warned_about(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    gho = generate_gho(countries=5, years=3, seed=2)
    gho.observations["WHOSIS_000002"] = []
    with serve_in_thread(create_app(data=gho)) as api:
        settings = Settings.load(env={"LAKEBOX_HOME": str(tmp_path), "LAKEBOX_WHO_API_URL": api.url,
                                      "LAKEBOX_WHO_INDICATORS": "WHOSIS_000001,WHOSIS_000002"}, cwd=tmp_path)
        lake = Lake(settings.lake)
        with caplog.at_level(logging.WARNING), open_warehouse(settings) as wh:
            run = run_pipeline(Pipeline("who_gho", (Stage("fetch", fetch), Stage("load", load))), settings, lake, wh)
            ledger = wh.query("select meta, rows, status from ops.batches where source = 'who_gho' order by meta")
            loaded = wh.query("select count(*), count(distinct indicator_code) from raw.who_observations")
            rows = wh.query("select batch_id, source, lake_path, sha256, bytes, status, error from ops.batches")
    assert run.status == "success", run.error
    empty = [(rows, status) for meta, rows, status in ledger if '"resource":"WHOSIS_000002"' in meta]
    assert empty == [(0, "loaded")]  # recorded: the ledger says what the API answered
    assert loaded == [(len(gho.observations["WHOSIS_000001"]), 1)]
    warned: list[dict[str, Any]] = [getattr(r, "fields", {}) for r in caplog.records
                                    if r.getMessage() == "who_gho: the API sent no records"]
    assert [w.get("resource") for w in warned] == ["WHOSIS_000002"]
    assert verify_lake(lake, "raw", rows).differences == [] and verify_lake(lake, "raw", rows).unledgered == 0
