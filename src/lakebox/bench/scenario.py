"""A pipeline's own bench scenario: it lives in the pipeline's folder and its spec names it
(`bench="bench:SCENARIO"`); the harness finds it through the specs, runs it and reports it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Results = dict[str, Any]


@dataclass(frozen=True)
class BenchScenario:
    """`run(size, root)` times the pipeline in the scratch folder `root` (size 0: skipped);
    the report shows `targets(results)` rows (what, measured, met) and `section(results)` lines.
    `key` holds its results in the report's JSON."""

    key: str
    run: Callable[[int, Path], Results]
    targets: Callable[[Results], list[tuple[str, str, str]]]
    section: Callable[[Results], list[str]]


def scenarios(env: Mapping[str, str] | None = None) -> Iterator[tuple[str, BenchScenario]]:
    """(pipeline, scenario) of every discovered pipeline whose spec names one, in name order."""
    from lakebox.pipelines import discover

    for name, spec in discover(env).items():
        if spec.bench is not None:
            yield name, spec.resolve(spec.bench)
