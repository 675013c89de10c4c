"""`lakebox bench --who`: the who_gho target of issue 10.

The whole pipeline offline (fetch, gate, dbt, four models with cross-validation, MLflow,
predictions) ≤ 20 s for 190 countries × 20 years × 3 sexes × 2 indicators: one-shot
`lakebox run who_gho` in a new home, start-up included, against the stand-in GHO API
(served by the bench's own process on loopback, as `lakebox who-api` serves it).

It runs twice, each in a new home: the first is the machine's first ML run (it builds the
machine cache's empty MLflow store; dbt's parse is already cached by the bench's first
scenario); the second, a user's new home on a machine that has run lakebox before, is the
figure held to the target. CPU seconds (the run's process) are reported beside wall
seconds, and the load average beside both, since on a shared machine the wall clock also
measures the neighbours.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lakebox.bench.scenario import BenchScenario

COUNTRIES, YEARS, SEED = 190, 20, 42
TARGET_S = 20.0


def bench_who(root: Path) -> dict[str, Any]:
    from lakebox.bench import _say
    from lakebox.pipelines.who_gho.api import serve

    _say(f"who_gho {COUNTRIES} countries × {YEARS} years: `lakebox run who_gho`, new home, twice …")
    with serve(countries=COUNTRIES, years=YEARS, seed=SEED) as api:
        runs = {name: _run(root / f"who-{name}", api.url) for name in ("first", "new_home")}
    return {"countries": COUNTRIES, "years": YEARS, **runs}


def _run(home: Path, url: str) -> dict[str, Any]:
    """One `lakebox run who_gho` in a fresh process: wall, its CPU, the stand-in's CPU, stages."""
    from lakebox.bench import _env, _last_run_stages

    env = _env(home, LAKEBOX_WHO_API_URL=url, LAKEBOX_LOG_LEVEL="WARNING")
    load_before = os.getloadavg()[0]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = time.process_time()  # the bench process serves the API meanwhile, and does nothing else
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lakebox.cli", "run", "who_gho"], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    server_cpu = time.process_time() - server_cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"lakebox run who_gho failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {"wall": wall, "cpu": cpu, "api_cpu": server_cpu, "load": [load_before, os.getloadavg()[0]],
            "stages": _last_run_stages(env)}


def targets(w: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The bench report's target row for who_gho."""
    run = w["new_home"]
    return [(f"who_gho: {w['countries']} countries × {w['years']} years × 3 sexes × 2 indicators, the whole pipeline "
             f"offline (fetch, gate, dbt, four models with CV, MLflow, predictions) ≤ {TARGET_S:.0f} s "
             "(`lakebox run who_gho`, new home, start-up included)",
             f"{run['wall']:.2f} s (CPU {run['cpu']:.2f} s, load {run['load'][0]:.1f})",
             "yes" if run["wall"] <= TARGET_S else "no")]


def section(w: dict[str, Any]) -> list[str]:
    """The report's who_gho section: each stage of both runs."""
    first, new = w["first"], w["new_home"]
    lines = [f"## who_gho, {w['countries']} countries × {w['years']} years (`lakebox run who_gho`, new home)", "",
             "| stage | s (machine's first ML run) | s (new home) |", "|---|---:|---:|"]
    earlier = {s["stage"]: s["seconds"] for s in first["stages"]}
    lines += [f"| {s['stage']} | {earlier.get(s['stage'], 0.0):.2f} | {s['seconds']:.2f} |" for s in new["stages"]]
    lines += [f"| **wall, start-up included** | **{first['wall']:.2f}** | **{new['wall']:.2f}** |",
              f"| CPU of the run's process (user + system) | {first['cpu']:.2f} | {new['cpu']:.2f} |",
              f"| CPU of the stand-in API (bench process) | {first['api_cpu']:.2f} | {new['api_cpu']:.2f} |",
              f"| load average (1 min) before → after | {first['load'][0]:.1f} → {first['load'][1]:.1f} | "
              f"{new['load'][0]:.1f} → {new['load'][1]:.1f} |", "",
              "The first run builds the machine cache's empty MLflow store (MLflow's migrations); the second "
              "copies it. Stages from `ops.stage_runs`; the wall clock adds Python's start-up and exit.", ""]
    return lines


def _bench(size: int, root: Path) -> dict[str, Any]:
    """The scenario at its one size (`lakebox bench --who`: any size above 0 runs it)."""
    return bench_who(root)


SCENARIO = BenchScenario("who", _bench, targets, section)
