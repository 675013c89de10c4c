"""`make demo`: every pipeline on the embedded default, each fed offline as its spec says
(retail: a generated drop; orders: the bundled API in-process), then where to look."""

from __future__ import annotations

from lakebox.log import configure_logging
from lakebox.settings import Settings


def run_demo() -> int:
    from rich.console import Console
    from rich.table import Table

    from lakebox.lake import Lake
    from lakebox.pipelines import discover
    from lakebox.runner import run_pipeline
    from lakebox.warehouse import open_warehouse

    console = Console(stderr=True)
    settings = Settings.load()
    log_file = configure_logging(settings.logs_dir, settings.env.get("LAKEBOX_LOG_LEVEL") or "WARNING")  # quieter than run
    lake = Lake.from_settings(settings)
    outcomes = []
    with open_warehouse(settings) as warehouse:
        for name, spec in discover(settings.env).items():
            console.print(f"[bold]running {name}[/] …")
            with spec.demo_input(settings) as fed:
                if fed.note:
                    console.print(f"  {fed.note}", highlight=False)
                outcomes.append(run_pipeline(spec.pipeline(), settings.with_pipeline_values(name, fed.settings),
                                             lake, warehouse))
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

