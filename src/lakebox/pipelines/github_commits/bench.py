"""`lakebox bench --github-size 10k`: the github_commits targets of issue 9.

- `size` commits through the bundled stand-in API to the marts (fetch, load, dbt) ≤ 6 s, in
  a warm process as a run of `lakebox watch` is (dbt imported and the project parsed); the
  stand-in serves commitlint's real history plus synthetic commits up to `size`, and runs in
  the same process, as it does for `lakebox run github_commits` offline;
- the ML stage on `size` commits (features, two models, MLflow logging, registry) ≤ 15 s;
- batch inference ≥ 50k rows/s (`lakebox.bench.ml`, 100k commits scored).

Each part runs in its own process; CPU seconds are reported beside wall seconds, since on a
shared machine the wall clock also measures the neighbours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakebox.bench.scenario import BenchScenario

REAL_HISTORY = 3466  # commitlint's commits, always served by the stand-in
TO_MARTS = ("fetch", "load", "transform")
ML_STAGES = ("predict", "train", "drift")


def bench_github(size: int, root: Path) -> dict[str, Any]:
    """The pipeline on `size` commits (stages timed), then the ML bench on `size` commits."""
    from lakebox.bench import _env, _say, _worker, human

    env = _env(root / f"github-{human(size)}", LAKEBOX_DEMO_GITHUB_COMMITS=str(max(0, size - REAL_HISTORY)),
               LAKEBOX_LOG_LEVEL="WARNING")
    _say(f"github_commits {human(size)} commits: stand-in API to marts, then the ML stages, warm process …")
    run = _worker("pipeline", env, name="github_commits", with_fetch=True, warm=True)
    _say(f"github_commits: training on {human(size)} commits and scoring 100k …")
    ml = _worker("ml", env, commits=size)
    return {"size": size, "pipeline": run, "ml": ml, **summary(run)}


def summary(run: dict[str, Any]) -> dict[str, float]:
    """Wall and CPU seconds from the API to the marts, and of the ML stages, in one run."""
    def total(names: tuple[str, ...], key: str) -> float:
        return float(sum(s.get(key, 0.0) for s in run["stages"] if s["stage"] in names))

    return {"to_marts_s": total(TO_MARTS, "seconds"), "to_marts_cpu_s": total(TO_MARTS, "cpu_seconds"),
            "ml_stages_s": total(ML_STAGES, "seconds"), "ml_stages_cpu_s": total(ML_STAGES, "cpu_seconds")}


def targets(g: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The bench report's target rows for github_commits."""
    n, ml = f"{g['size']:,}", g["ml"]
    rate = ml["predict_rows_per_s"]
    return [
        (f"github_commits: {n} commits, stand-in API → marts ≤ 6 s (warm process, as `lakebox watch` runs it)",
         f"{g['to_marts_s']:.2f} s (CPU {g['to_marts_cpu_s']:.2f} s)", "yes" if g["to_marts_s"] <= 6 else "no"),
        (f"commit classifier: training on {ml['commits']:,} commits (features, two models, MLflow, registry) ≤ 15 s",
         f"{ml['train_first_s']:.2f} s (again: {ml['train_again_s']:.2f} s, CPU {ml['train_again_cpu_s']:.2f} s)",
         "yes" if ml["train_first_s"] <= 15 else "no"),
        (f"commit classifier: batch inference ≥ 50k rows/s ({ml['predict_rows']:,} rows, model load included)",
         f"{rate:,.0f} rows/s ({ml['predict_rows_per_cpu_s']:,.0f} per CPU-s)", "yes" if rate >= 50_000 else "no"),
    ]


def section(g: dict[str, Any]) -> list[str]:
    """The report's github_commits section: every stage of the run, wall and CPU."""
    lines = [f"## github_commits, {g['size']:,} commits through the stand-in API (warm process)", "",
             "| stage | s | CPU s | rows | peak RSS MB |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {s['stage']} | {s['seconds']:.2f} | {s.get('cpu_seconds', 0.0):.2f} | {s['rows']:,} | "
              f"{s['peak_rss_mb']:.0f} |" for s in g["pipeline"]["stages"]]
    lines += [f"| **API → marts** | **{g['to_marts_s']:.2f}** | {g['to_marts_cpu_s']:.2f} | | |",
              f"| ML stages (predict, train, drift) | {g['ml_stages_s']:.2f} | {g['ml_stages_cpu_s']:.2f} | | |", ""]
    ml = g["ml"]
    candidates = ", ".join(f"{name} {s:.2f} s" for name, s in ml["candidates_s"].items())
    lines += [f"Training on {ml['commits']:,} commits (`python -m lakebox.bench.ml`): first {ml['train_first_s']:.2f} s "
              f"(new MLflow store), again {ml['train_again_s']:.2f} s ({candidates}). Scoring "
              f"{ml['predict_rows']:,} commits: {ml['predict_s']:.2f} s, model load {ml['predict_model_load_s']:.2f} s "
              f"of it.", ""]
    return lines


SCENARIO = BenchScenario("github", bench_github, targets, section)
