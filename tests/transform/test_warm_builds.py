"""What keeps repeated builds cheap: views built once per project version, and a kept
manifest that follows the project on disk."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lakebox.transform import dbt as dbt_runner
from lakebox.transform import selection
from tests.conftest import run_cli


def test_selection_leaves_out_current_views_but_keeps_their_tests() -> None:
    assert selection("path:models/retail", views_current=False) == ["path:models/retail"]
    assert selection("path:models/retail", views_current=True) == [
        "path:models/retail,config.materialized:table",
        "path:models/retail,config.materialized:incremental",
        "path:models/retail,resource_type:test",
    ]


def dbt_builds(stderr: str) -> list[dict]:
    return [e for e in (orjson.loads(line) for line in stderr.splitlines() if line.startswith("{"))
            if e.get("msg") == "dbt build done"]


@pytest.mark.slow
def test_views_are_built_once_per_project_version(lakebox_env: dict[str, str]) -> None:
    env = {**lakebox_env, "LAKEBOX_LOG_LEVEL": "INFO"}
    landing = Path(lakebox_env["LAKEBOX_HOME"]) / "landing" / "retail"
    gen = run_cli("retail-generate", "--stores", "2", "--months", "1", "--seed", "8", "--start", "2026-02-01",
                  "--out", str(landing), env=env)
    assert gen.returncode == 0, gen.stderr
    day = sorted(landing.glob("daily_sales_*.csv"))[-1]
    held_back = day.read_bytes()
    day.unlink()
    first = run_cli("run", "retail", env=env)
    assert first.returncode == 0, first.stderr
    day.write_bytes(held_back)
    second = run_cli("run", "retail", env=env)
    assert second.returncode == 0, second.stderr
    refresh = run_cli("run", "retail", "--full-refresh", env=env)
    assert refresh.returncode == 0, refresh.stderr
    counts = [(b["models"], b["tests"]) for b in dbt_builds(first.stderr + second.stderr + refresh.stderr)]
    assert counts == [(12, 19), (8, 19), (12, 19)]


@pytest.mark.slow
def test_a_kept_manifest_is_parsed_again_when_the_project_changes(
    lakebox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    monkeypatch.setattr(dbt_runner, "_PARSED", {})  # this process's kept manifests, restored after
    settings = Settings.load()
    with open_warehouse(settings):
        pass
    dbt_runner.parse_project(settings)
    parses = []
    real_parse = dbt_runner.parse_project
    monkeypatch.setattr(dbt_runner, "parse_project", lambda s: parses.append(1) or real_parse(s))
    assert dbt_runner._parsed_manifest(settings) is not None and parses == []
    monkeypatch.setattr(dbt_runner, "project_signature", lambda s: "edited")
    assert dbt_runner._parsed_manifest(settings) is not None and parses == [1]
    assert dbt_runner._parsed_manifest(settings) is not None and parses == [1], "parsed once per change"


def test_the_project_digest_covers_what_dbt_reads_only(lakebox_env: dict[str, str]) -> None:
    from lakebox.settings import Settings

    settings = Settings.load(lakebox_env)
    before = dbt_runner.project_signature(settings)
    project = dbt_runner.project_dir(settings)
    stray = project / "logs" / "lakebox-test-stray.log"  # e.g. a hand-run dbt's log
    stray.parent.mkdir(exist_ok=True)
    stray.write_text("not part of the project")
    assert dbt_runner.project_signature(settings) == before
    assert len(before) == 64
