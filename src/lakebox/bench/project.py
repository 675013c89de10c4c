"""`lakebox bench --project`: a user's project of many pipelines stays quick to work with.

Issue 19's targets: `lakebox --help` ≤ 0.5 s with a 20-pipeline project, and `lakebox check`
on that project ≤ 5 s warm (its dbt project parsed once before). The project is made by
`lakebox init` and 19 copies of its example pipeline, each renamed; every command runs as
a user runs it, a new process in the project's folder. Medians of several runs, since one
start-up on a shared 2-core machine also measures the neighbours.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PIPELINES = 20
HELP_TARGET_S = 0.5
CHECK_TARGET_S = 5.0
REPEATS = 5


def make_project(root: Path, pipelines: int = PIPELINES) -> Path:
    """A `lakebox init` project holding `pipelines` coded pipelines (the example and its copies)."""
    from lakebox.project import init_project

    project = root / "project-20"
    init_project(project)
    example = project / "pipelines" / "weather"
    names = ["weather"] + [f"weather_{i:02d}" for i in range(1, pipelines)]
    for name in names[1:]:
        copy = project / "pipelines" / name
        shutil.copytree(example, copy, ignore=shutil.ignore_patterns("__pycache__"))
        for path in [p for p in copy.rglob("*") if p.is_file() and p.suffix in (".py", ".sql", ".yml")]:
            path.write_text(path.read_text().replace("weather", name))
        for path in sorted(copy.rglob("*weather*"), reverse=True):
            path.rename(path.with_name(path.name.replace("weather", name, 1)))
    config = project / "lakebox.toml"
    config.write_text(re.sub(r'pipelines = \["weather"\]', f"pipelines = {names!r}".replace("'", '"'),
                             config.read_text()))
    return project


def _timed(args: list[str], project: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lakebox.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lakebox {' '.join(args)} failed in {project}:\n{proc.stderr[-3000:]}")
    return seconds


def bench_project(root: Path) -> dict[str, Any]:
    from lakebox.bench import _env, _say

    project = make_project(root)
    env = _env(project / ".lakebox", LAKEBOX_LOG_LEVEL="WARNING")
    env.pop("LAKEBOX_HOME")  # the project's own home, as a user has it
    _say(f"a project of {PIPELINES} pipelines: `lakebox --help` and `lakebox check` …")
    cold_check = _timed(["check"], project, env)
    helps = [_timed(["--help"], project, env) for _ in range(REPEATS)]
    checks = [_timed(["check"], project, env) for _ in range(3)]
    return {"pipelines": PIPELINES, "help": statistics.median(helps), "help_runs": helps,
            "check_cold": cold_check, "check": statistics.median(checks), "check_runs": checks}


def targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (f"`lakebox --help` with a {r['pipelines']}-pipeline project ≤ {HELP_TARGET_S} s (median of {REPEATS})",
         f"{r['help']:.2f} s", "yes" if r["help"] <= HELP_TARGET_S else "no"),
        (f"`lakebox check` on that project ≤ {CHECK_TARGET_S:.0f} s warm", f"{r['check']:.2f} s "
         f"(cold: {r['check_cold']:.2f} s)", "yes" if r["check"] <= CHECK_TARGET_S else "no"),
    ]
