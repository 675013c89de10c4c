"""A pipeline's bench scenario lives in its folder and its spec names it: the harness finds
them through the specs, and bench/ keeps only the harness."""

from __future__ import annotations

from pathlib import Path

import lakebox.bench
from lakebox.bench.report import render
from lakebox.bench.scenario import BenchScenario, scenarios
from lakebox.pipelines import discover


def test_the_harness_finds_each_scenario_through_the_specs() -> None:
    found = dict(scenarios())
    assert {name: s.key for name, s in found.items()} == {"github_commits": "github", "who_gho": "who"}
    for name, scenario in found.items():
        assert isinstance(scenario, BenchScenario)
        assert scenario.run.__module__ == f"lakebox.pipelines.{name}.bench"


def test_bench_keeps_no_module_named_after_a_pipeline() -> None:
    harness = {p.stem for p in Path(lakebox.bench.__file__).parent.glob("*.py")}
    names = set(discover()) | {"github", "who", "retail", "orders"}
    assert harness & names == set()


def test_the_report_shows_a_scenario_found_through_its_spec() -> None:
    who = {"countries": 2, "years": 3,
           **{run: {"wall": 1.5, "cpu": 1.0, "api_cpu": 0.1, "load": [0.5, 0.6], "stages": []}
              for run in ("first", "new_home")}}
    report = render({"machine": "test", "date": "today", "who": who})
    assert "| who_gho: 2 countries × 3 years" in report and "## who_gho, 2 countries × 3 years" in report
