"""`make demo`: every pipeline on the embedded default, each fed offline as its spec says
(retail: a generated drop; orders: the bundled API in-process), then what was built and
where to look. On a terminal it reads like `lakebox run`: a line per stage, warnings as
short lines; the JSON log lines go to the log file."""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from lakebox.log import configure_logging, quiet_libraries
from lakebox.settings import Settings

if TYPE_CHECKING:
    from lakebox.runner import RunOutcome
    from lakebox.warehouse import Warehouse

SUMMARY_SCHEMAS = ("staging", "analytics", "ml")


def run_demo() -> int:
    from rich.console import Console

    from lakebox import tables
    from lakebox.lake import Lake
    from lakebox.pipelines import discover
    from lakebox.run_view import run_view
    from lakebox.runner import run_pipeline
    from lakebox.warehouse import open_warehouse

    terminal = sys.stderr.isatty()
    console = Console(stderr=True, highlight=False, soft_wrap=True)  # a long line wraps on screen, not in the text
    settings = Settings.load()
    quiet_libraries()
    log_file = configure_logging(settings.logs_dir, settings.env.get("LAKEBOX_LOG_LEVEL") or "WARNING", human=terminal)
    lake = Lake.from_settings(settings)
    outcomes = []
    with open_warehouse(settings) as warehouse:
        for name, spec in discover(settings.env).items():
            console.print(f"[bold]running {name}[/] …")
            with spec.demo_input(settings) as fed, run_view() if terminal else nullcontext():
                if fed.note:
                    console.print(f"  {fed.note}")
                outcomes.append(run_pipeline(spec.pipeline(), settings.with_pipeline_values(name, fed.settings),
                                             lake, warehouse))
            o = outcomes[-1]
            colour = "green" if o.status == "success" else "red"
            marts = mart_rows(warehouse, spec.marts)
            console.print(f"  [{colour}]{o.status}[/] in {o.duration_s:.1f}s ({o.rows_in:,} rows in; {marts:,} rows "
                          f"in its marts: {', '.join(spec.marts)})")
            for line in drift_notes(warehouse, o):
                console.print(f"  [yellow]{line}[/]")
            if o.error:
                console.print(f"  [red]{o.error}[/]")
        built = table_rows(warehouse)
        where = warehouse.describe()
    console.print()
    tables.show(tables.Table((tables.Column("table", kind="id"), tables.Column("rows", kind="number")), built,
                             "what lakebox built"), err=True)
    exe = lakebox_command()
    console.print(
        f"\nwarehouse  {where}\n"
        f"raw lake   {lake.url}/raw  (as received, write-once; quarantine/ and snapshots/ beside it)\n"
        f"logs       {shown_path(log_file)}\n"
        f"next       {exe} status      recent runs from the audit trail\n"
        f"           {exe} dashboard   the Streamlit dashboard on http://127.0.0.1:8501\n"
        f"           {exe} watch       stay up: each new drop or order reaches the marts in seconds")
    return 0 if all(o.status == "success" for o in outcomes) else 1


def mart_rows(warehouse: Warehouse, marts: tuple[str, ...]) -> int:
    """Rows in a pipeline's marts (the tables its spec names), as built now."""
    total = 0
    for table in marts:
        schema, name = table.split(".", 1)
        if warehouse.table_exists(schema, name):
            total += int(warehouse.query(f"select count(*) from {schema}.{name}")[0][0])
    return total


def table_rows(warehouse: Warehouse) -> list[tuple[str, int]]:
    """Every table and view of the staging, analytics and ml schemas, with its rows."""
    listed = ", ".join(f"'{s}'" for s in SUMMARY_SCHEMAS)
    found = warehouse.query("select table_schema, table_name from information_schema.tables "
                            f"where table_schema in ({listed}) order by 1, 2")
    return [(f"{s}.{t}", int(warehouse.query(f"select count(*) from {s}.{t}")[0][0])) for s, t in found]


def drift_notes(warehouse: Warehouse, outcome: RunOutcome) -> list[str]:
    """Why this run's drift check flagged, in words: which window it compared, what it held."""
    if not outcome.stages or not warehouse.table_exists("ml", "drift_report"):
        return []
    rows = warehouse.query(
        "select d.model_name, count(*) filter (where d.drifted), count(*), min(d.window_start), min(d.window_end) "
        "from ml.drift_report d where d.computed_at = (select max(r.computed_at) from ml.drift_report r "
        "where r.model_name = d.model_name) group by d.model_name order by 1")
    return [f"drift: model {model}: {flagged} of {features} features differ in the window {str(start)[:10]} to "
            f"{str(end)[:10]} from the rows before it{_window_note(warehouse, model, start, end)}"
            for model, flagged, features, start, end in rows if flagged and _ran_drift(outcome)]


def _ran_drift(outcome: RunOutcome) -> bool:
    return any(stage == "drift" and status == "success" for stage, status, *_ in outcome.stages)


def _window_note(warehouse: Warehouse, model: str, start: object, end: object) -> str:
    """The commit classifier's window on the bundled data holds one repository: say so."""
    if model != "commit-classifier" or start is None or not warehouse.table_exists("ml", "commit_features"):
        return ""
    repos = warehouse.query("select repo, count(*) from ml.commit_features where committed_at >= ? "
                            "and committed_at <= ? group by repo", [start, end])
    if len(repos) != 1:
        return ""
    repo, n = repos[0]
    return (f"; all {n:,} commits in that window come from {repo} (the bundled synthetic repositories end "
            "earlier), so this flags a change of population, not a model going stale (docs/ml.md, Drift)")


def lakebox_command() -> str:
    """How to run `lakebox` from where the user is: this installation's script, by a path
    that exists from the current folder (relative when below it), else the bare name."""
    script = Path(sys.executable).parent / "lakebox"
    if not script.exists():
        found = shutil.which("lakebox")
        return found or "lakebox"
    return shown_path(script)


def shown_path(path: Path) -> str:
    """`path` relative to the current folder when it lies below it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        relative = str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
    return relative if "/" in relative else f"./{relative}"
