"""The who_gho bench scenario runs the real `lakebox run who_gho` twice (each in a new home)
against the stand-in, and the report holds its target row and its stage table."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakebox.bench.report import render
from lakebox.pipelines.who_gho import bench as who

pytestmark = pytest.mark.slow


def test_the_scenario_times_two_new_homes_and_reports_the_target(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(who, "COUNTRIES", 40)
    monkeypatch.setattr(who, "YEARS", 10)

    result = who.bench_who(tmp_path)

    for name in ("first", "new_home"):
        run = result[name]
        assert [s["stage"] for s in run["stages"]] == ["fetch", "load", "transform", "predict", "train", "drift"]
        assert run["wall"] >= sum(s["seconds"] for s in run["stages"]) and run["cpu"] > 0
        assert (tmp_path / f"who-{name}" / "warehouse.duckdb").is_file()
    report = render({"machine": "test", "date": "today", "who": result})
    target = next(line for line in report.splitlines() if line.startswith("| who_gho: 40 countries × 10 years"))
    assert f"{result['new_home']['wall']:.2f} s (CPU {result['new_home']['cpu']:.2f} s" in target
    assert target.endswith(("| yes |", "| no |"))
    assert "| train |" in report and "| **wall, start-up included** |" in report
