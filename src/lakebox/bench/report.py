"""The benchmark report as markdown: per-stage figures, floor ratios, and the targets."""

from __future__ import annotations

from typing import Any

from lakebox.bench.scenario import scenarios


def _human(n: int) -> str:
    from lakebox.bench import human

    return human(n)


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 and rows else ""


def _stage_table(result: dict[str, Any]) -> list[str]:
    size = result["size"]
    lines = [
        f"### {_human(size)} orders, lake to marts (prepare: {result['prepare']:.1f} s to write the pages)",
        "",
        "| stage | pipeline s | rows/s | peak RSS MB | floor s | floor peak RSS MB | pipeline / floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    floor = {s["stage"]: s for s in result["floor"]["stages"]}
    for s in result["pipeline"]["stages"]:
        f = floor.get(s["stage"])
        ratio = f"{s['seconds'] / f['seconds']:.2f}" if f and f["seconds"] > 0 else ""
        lines.append(
            f"| {s['stage']} | {s['seconds']:.2f} | {_rate(size, s['seconds'])} | {s['peak_rss_mb']:.0f} | "
            f"{f['seconds']:.2f} | {f['peak_rss_mb']:.0f} | {ratio} |" if f else
            f"| {s['stage']} | {s['seconds']:.2f} | {_rate(size, s['seconds'])} | {s['peak_rss_mb']:.0f} | | | |"
        )
    p, fl = result["pipeline"], result["floor"]
    peak = max(s["peak_rss_mb"] for s in p["stages"])
    fpeak = max(s["peak_rss_mb"] for s in fl["stages"])
    lines.append(
        f"| **total** | **{p['seconds']:.2f}** | {_rate(size, p['seconds'])} | {peak:.0f} | **{fl['seconds']:.2f}** | "
        f"{fpeak:.0f} | **{p['seconds'] / fl['seconds']:.2f}** |"
    )
    if "incremental" in result:
        inc = result["incremental"]
        lines += ["", f"Incremental run adding 1% ({inc['rows']:,} new or updated orders), a one-shot process: "
                  f"{inc['seconds']:.2f} s = {100 * inc['seconds'] / p['seconds']:.1f}% of the full run "
                  f"({_stage_list(inc)})."]
    if "incremental_warm" in result:
        inc = result["incremental_warm"]
        lines += ["", f"The next 1% ({inc['rows']:,} orders) as a scheduled run of `lakebox watch` (dbt already "
                  f"imported, project parsed): {inc['seconds']:.2f} s = {100 * inc['seconds'] / p['seconds']:.1f}% "
                  f"of the full run ({_stage_list(inc)})."]
    return lines + [""]


def _stage_list(run: dict[str, Any]) -> str:
    return ", ".join(f"{s['stage']} {s['seconds']:.2f} s" for s in run["stages"])


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if "http" in results:
        h = results["http"]
        rows.append((f"{_human(h['size'])} orders through the whole pipeline via HTTP ≤ 8 s", f"{h['seconds']:.2f} s",
                     "yes" if h["seconds"] <= 8 else "no"))
    big = max(results.get("orders", []), key=lambda r: r["size"], default=None)
    if big:
        ratio = big["pipeline"]["seconds"] / big["floor"]["seconds"]
        peak = max(s["peak_rss_mb"] for s in big["pipeline"]["stages"])
        rows.append((f"{_human(big['size'])} orders lake → marts ≤ 1.5× floor", f"{ratio:.2f}×", "yes" if ratio <= 1.5 else "no"))
        rows.append((f"{_human(big['size'])} orders peak RSS ≤ 2 GB", f"{peak:,.0f} MB", "yes" if peak <= 2048 else "no"))
        for key, how in (("incremental_warm", "scheduled run of `lakebox watch`"), ("incremental", "one-shot process")):
            if key in big:
                share = big[key]["seconds"] / big["pipeline"]["seconds"]
                rows.append((f"incremental +1% at {_human(big['size'])} ≤ 10% of the full run ({how})",
                             f"{100 * share:.1f}%", "yes" if share <= 0.10 else "no"))
    if "cli" in results:
        c = results["cli"]
        rows.append((f"`lakebox run orders` with {c['size']:,} orders ≤ 10 s wall (new home)", f"{c['seconds']:.2f} s",
                     "yes" if c["seconds"] <= 10 else "no"))
        if "cold_seconds" in c:
            rows.append(("… the same on a machine's first run (no cached dbt parse)", f"{c['cold_seconds']:.2f} s",
                         "yes" if c["cold_seconds"] <= 10 else "no"))
    if "retail" in results:
        r = results["retail"]
        rows.append((f"retail {r['stores']} stores × {r['months']} months, landing to marts ≤ 10 s "
                     "(`lakebox run retail`, start-up included)",
                     f"{r['full']['wall']:.2f} s", "yes" if r["full"]["wall"] <= 10 else "no"))
        if "watch" in r:
            w = r["watch"]["latency"]
            rows.append(("retail: a new day's drop alone ≤ 2 s, `lakebox watch` up (drop → marts)", f"{w:.2f} s",
                         "yes" if w <= 2 else "no"))
        rows.append(("retail: a new day's drop alone ≤ 2 s, one-shot `lakebox run retail` (fresh process)",
                     f"{r['day']['wall']:.2f} s", "yes" if r["day"]["wall"] <= 2 else "no"))
    for _, scenario in scenarios():
        if scenario.key in results:
            rows += scenario.targets(results[scenario.key])
    if "postgres" in results:
        pg = results["postgres"]
        rate = pg["copy"]["rows"] / pg["copy"]["seconds"]
        rows.append((f"load into PostgreSQL at {_human(pg['size'])} rows ≥ 300k rows/s (binary COPY, one transaction)",
                     f"{rate:,.0f} rows/s", "yes" if rate >= 300_000 else "no"))
    if "s3" in results:
        ratio = results["s3"]["seconds"] / results["s3_local"]["seconds"]
        rows.append((f"S3 lake (moto) vs local disk at {_human(results['s3']['size'])} ≤ 1.5×", f"{ratio:.2f}×",
                     "yes" if ratio <= 1.5 else "no"))
    for key in MODULES:  # each in its own module
        if key in results:
            rows += _module(key).targets(results[key])
    return rows


# bench modules whose results sit under their own name: observability (issue 12), serve (11),
# lineage (22), project (19: a 20-pipeline project's --help and check), check (20: 50 declared),
# declarative (20: a declared REST pipeline beside orders)
MODULES = ("observability", "serve", "lineage", "project", "check", "declarative")


def _module(key: str) -> Any:
    import importlib

    return importlib.import_module(f"lakebox.bench.{key}")


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`lakebox bench --record docs/benchmarks.md`); the raw figures are in",
        "`docs/benchmarks.json`. Each scenario runs in its own process in a scratch home; peak RSS is",
        "per stage (VmHWM reset before each). The floor is the same work as one plain DuckDB SQL script",
        "over the same lake files (`src/lakebox/bench/floor.py`), run in the same bench. Every process",
        "pays Python's and dbt's start-up (dbt import ~2-3 s). The bench starts with an empty machine",
        "cache (`LAKEBOX_CACHE_DIR` in its scratch folder): its first dbt run pays dbt's full parse",
        "(~3.5 s), as a machine's first run does; later scratch homes start from that parse, as a",
        "user's new homes do. The incremental runs are later runs in the same home.",
        "",
        f"- machine: {results['machine']}",
        f"- date: {results['date']}",
        *([f"- dbt's first parse into the empty machine cache (import included): {results['first_parse']:.2f} s"]
          if "first_parse" in results else []),
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---:|:---:|",
    ]
    lines += [f"| {t} | {m} | {ok} |" for t, m, ok in targets(results)]
    lines += ["", "## orders: pipeline beside its floor", ""]
    for result in results.get("orders", []):
        lines += _stage_table(result)
    variants = (("http", "over HTTP (fetch included)"), ("postgres", "on PostgreSQL"), ("s3", "with the lake on S3 (moto)"))
    for key, title in variants:
        if key in results:
            r = results[key]
            lines += [f"## orders {title}, {_human(r['size'])} orders", "", "| stage | s | rows/s | peak RSS MB |",
                      "|---|---:|---:|---:|"]
            lines += [f"| {s['stage']} | {s['seconds']:.2f} | {_rate(r['size'], s['seconds'])} | {s['peak_rss_mb']:.0f} |"
                      for s in r["stages"]]
            lines += [f"| **total** | **{r['seconds']:.2f}** | | |", ""]
            if key == "postgres":
                c = r["copy"]
                lines += [f"The load stage above parses and checks JSON pages before COPY. The COPY alone "
                          f"(DuckDB scratch → PostgreSQL, {c['rows']:,} rows, one transaction): {c['seconds']:.2f} s = "
                          f"{c['rows'] / c['seconds']:,.0f} rows/s.", ""]
    if "retail" in results:
        r = results["retail"]
        lines += [f"## retail, {r['stores']} stores × {r['months']} months ({r['files']} files)", "",
                  "| run | stage | s | rows or files |", "|---|---|---:|---:|"]
        for phase, label in (("full", "landing to marts"), ("day", "a new day's drop")):
            lines += [f"| {label} | {s['stage']} | {s['seconds']:.2f} | {s['rows']:,} |" for s in r[phase]["stages"]]
            lines.append(f"| {label} | **wall, `lakebox run retail`** | **{r[phase]['wall']:.2f}** | |")
        if "watch" in r:
            w, label = r["watch"], "a new day, `lakebox watch` up"
            lines += [f"| {label} | {s['stage']} | {s['seconds']:.2f} | {s['rows']:,} |" for s in w["stages"]]
            lines.append(f"| {label} | run (ops.pipeline_runs) | {w['run']:.2f} | |")
            lines.append(f"| {label} | **drop → marts** (files renamed into place → run finished) | **{w['latency']:.2f}** | |")
            lines += ["", f"The watcher was ready {w['startup']:.1f} s after it started (Python, dbt import and parse, "
                      "a catch-up run that found nothing new); it polls the landing folder every 0.05 s and runs "
                      "once a change has stayed still for one poll."]
        lines.append("")
    for _, scenario in scenarios():
        if scenario.key in results:
            lines += scenario.section(results[scenario.key])
    for key in MODULES:
        if key in results and hasattr(_module(key), "section"):
            lines += _module(key).section(results[key])
    return "\n".join(lines).rstrip() + "\n"
