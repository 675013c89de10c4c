"""`make demo`: every bundled pipeline on the embedded default, then where to look."""

from __future__ import annotations

import os
from pathlib import Path

from lakebox.log import configure_logging
from lakebox.settings import Settings

DEMO_STORES, DEMO_MONTHS, DEMO_SEED = 150, 6, 7


def run_demo() -> int:
    from rich.console import Console
    from rich.table import Table

    from lakebox.lake import Lake
    from lakebox.pipelines import REGISTRY, get_pipeline
    from lakebox.runner import run_pipeline
    from lakebox.warehouse import open_warehouse

    console = Console(stderr=True)
    settings = Settings.load()
    log_file = configure_logging(settings.logs_dir, os.environ.get("LAKEBOX_LOG_LEVEL", "WARNING"))
    _ensure_retail_drop(settings, console)
    lake = Lake.from_settings(settings)
    outcomes = []
    with open_warehouse(settings) as warehouse:
        for name in REGISTRY:
            console.print(f"[bold]running {name}[/] …")
            outcomes.append(run_pipeline(get_pipeline(name), settings, lake, warehouse))
            o = outcomes[-1]
            colour = "green" if o.status == "success" else "red"
            console.print(f"  [{colour}]{o.status}[/] in {o.duration_s:.1f}s ({o.rows_in:,} in, {o.rows_out:,} mart rows)")
            if o.error:
                console.print(f"  [red]{o.error}[/]", highlight=False)
        marts = warehouse.query(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'analytics') order by 1, 2"
        )
        counts = [(f"{s}.{t}", warehouse.query(f"select count(*) from {s}.{t}")[0][0]) for s, t in marts]
    table = Table(title="what lakebox built")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts:
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(
        f"warehouse  {warehouse.describe()}\n"
        f"raw lake   {lake.url}/raw  (as received, write-once; quarantine/ and snapshots/ beside it)\n"
        f"logs       {log_file}\n"
        "next       .venv/bin/lakebox status      recent runs from the audit trail\n"
        "           .venv/bin/lakebox dashboard   the Streamlit dashboard on http://127.0.0.1:8501\n"
        "           .venv/bin/lakebox watch       stay up: each new drop or order reaches the marts in seconds",
        highlight=False,
    )
    return 0 if all(o.status == "success" for o in outcomes) else 1


def _ensure_retail_drop(settings: Settings, console: object) -> None:
    """Generate the retail drop once, so the demo has files to ingest."""
    if "://" in settings.landing:
        return
    folder = Path(settings.landing) / "retail"
    if folder.is_dir() and any(folder.iterdir()):
        return
    from lakebox.pipelines.retail.generator import generate_drops

    summary = generate_drops(str(folder), stores=DEMO_STORES, months=DEMO_MONTHS, seed=DEMO_SEED, start=None)
    console.print(summary)  # type: ignore[attr-defined]
