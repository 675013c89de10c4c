"""The `lakebox` command. Heavy libraries are imported inside the commands that need them,
so `lakebox --help` and light commands start fast."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lakebox.errors import LakeboxError

app = typer.Typer(
    help="lakebox: a local-first data & ML platform. Pipelines run in-process on an embedded "
    "DuckDB warehouse by default; URLs switch each part to PostgreSQL or S3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings():  # noqa: ANN202 - typer introspects annotations
    from lakebox.log import configure_logging
    from lakebox.settings import Settings

    settings = Settings.load()
    configure_logging(settings.logs_dir, settings.log_level)
    from lakebox.observability import configure as observe  # Loki shipping (issue 12)

    observe(settings)
    return settings


def _fail(exc: BaseException) -> None:
    from lakebox.settings import redact

    typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
    raise typer.Exit(getattr(exc, "exit_code", 1))


@app.command()
def run(
    pipelines: Annotated[list[str] | None, typer.Argument(help="pipelines to run (default: all)")] = None,
    full_refresh: Annotated[bool, typer.Option(help="rebuild every model from scratch (after changing dbt models)")] = False,
) -> None:
    """Run pipelines end to end: ingest, check, load, transform, snapshot. Exit 0 only if all succeed."""
    from lakebox.pipelines import REGISTRY, get_pipeline
    from lakebox.runner import run_pipeline
    from lakebox.lake import Lake
    from lakebox.warehouse import open_warehouse

    try:
        settings = _settings()
        chosen = [get_pipeline(name) for name in (pipelines or list(REGISTRY))]
        lake = Lake.from_settings(settings)
        with open_warehouse(settings) as warehouse:
            outcomes = [run_pipeline(p, settings, lake, warehouse, {"full_refresh": full_refresh}) for p in chosen]
            from lakebox.observability import after_runs  # Pushgateway, alerts (issue 12)

            after_runs(settings, outcomes, warehouse)
    except LakeboxError as exc:
        _fail(exc)
        return
    _print_outcomes(outcomes)
    if any(o.status != "success" for o in outcomes):
        raise typer.Exit(1)


def _print_outcomes(outcomes) -> None:  # noqa: ANN001
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title="lakebox run", show_lines=False)
    for col in ("pipeline", "status", "seconds", "rows in", "rows out", "run id"):
        table.add_column(col)
    for o in outcomes:
        colour = "green" if o.status == "success" else "red"
        table.add_row(o.pipeline, f"[{colour}]{o.status}[/]", f"{o.duration_s:.2f}", str(o.rows_in),
                      str(o.rows_out), o.run_id)
    console.print(table)
    for o in outcomes:
        if o.error:
            console.print(f"[red]{o.pipeline} failed:[/] {o.error}", markup=True, highlight=False)


@app.command()
def watch(
    pipelines: Annotated[list[str] | None, typer.Argument(help="pipelines to watch (default: all)")] = None,
    every: Annotated[float, typer.Option(help="seconds between runs of API-fed pipelines (orders)")] = 60.0,
    poll: Annotated[float, typer.Option(help="seconds between looks at landing folders (retail)")] = 0.5,
    max_runs: Annotated[int, typer.Option(help="stop after this many runs (0: until stopped)")] = 0,
    metrics_port: Annotated[int | None, typer.Option(help="serve /metrics here (default: LAKEBOX_METRICS_PORT)")] = None,
) -> None:
    """Stay up and run pipelines as their input arrives, with dbt kept warm (Ctrl-C or SIGTERM stops)."""
    import signal
    import threading

    from lakebox.log import get_logger
    from lakebox.pipelines import REGISTRY, get_pipeline
    from lakebox.watch import watch as watch_pipelines

    if every <= 0 or poll <= 0 or max_runs < 0:
        _fail(ValueError("--every and --poll must be positive and --max-runs not negative"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runs = None  # unknown after Ctrl-C
    try:
        settings = _settings()
        chosen = [get_pipeline(name) for name in (pipelines or list(REGISTRY))]
        from lakebox.observability import watching  # /metrics and checks (issue 12)

        with watching(settings, metrics_port) as observer:
            runs = watch_pipelines(settings, chosen, every=every, poll=poll, max_runs=max_runs or None, stop=stop,
                                   on_run=observer.on_run)
    except LakeboxError as exc:
        _fail(exc)
        return
    except KeyboardInterrupt:
        pass
    get_logger().info("watch stopped", runs=runs)


@app.command()
def status(limit: Annotated[int, typer.Option(help="how many recent runs to show")] = 20) -> None:
    """Recent pipeline runs from the audit trail (ops.pipeline_runs)."""
    from rich.console import Console
    from rich.table import Table

    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import recent_runs

    try:
        settings = _settings()
        with open_warehouse(settings) as warehouse:
            rows = recent_runs(warehouse, limit)
            where = warehouse.describe()
    except LakeboxError as exc:
        _fail(exc)
        return
    console = Console()
    if not rows:
        console.print(f"No runs yet in {where}. Try: lakebox run")
        return
    table = Table(title=f"recent runs ({where})")
    for col in ("run id", "pipeline", "status", "started (UTC)", "seconds", "rows in", "rows out", "error"):
        table.add_column(col, overflow="fold")
    for run_id, pipeline, state, started, seconds, rows_in, rows_out, error in rows:
        colour = {"success": "green", "failed": "red"}.get(state, "yellow")
        table.add_row(run_id, pipeline, f"[{colour}]{state}[/]", str(started)[:19],
                      f"{seconds:.2f}" if seconds is not None else "", str(rows_in or 0), str(rows_out or 0),
                      (error or "").splitlines()[0][:120] if error else "")
    console.print(table)


@app.command()
def config() -> None:
    """Show the settings in force (secrets redacted)."""
    from lakebox.settings import Settings

    try:
        described = Settings.load().describe()
    except LakeboxError as exc:
        _fail(exc)
        return
    for key, value in described.items():
        typer.echo(f"{key:15} {value}")


@app.command("orders-api")
def orders_api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    orders: Annotated[int, typer.Option(help="how many synthetic orders to serve")] = 10_000,
    seed: Annotated[int, typer.Option(help="seed: same seed, same orders")] = 42,
    fault: Annotated[list[str] | None, typer.Option(help="inject a fault, e.g. 429:2, 500:1, slow:1:delay=0.5")] = None,
) -> None:
    """Serve the synthetic orders REST API (GET /v1/orders)."""
    from lakebox.pipelines.orders.api import serve_forever

    try:
        serve_forever(host, port, orders, seed, fault or [])
    except LakeboxError as exc:
        _fail(exc)


@app.command()
def grants() -> None:
    """Create the lakebox roles and their grants on PostgreSQL (idempotent)."""
    from lakebox.warehouse.grants import apply_grants

    try:
        settings = _settings()
        for line in apply_grants(settings):
            typer.echo(line)
    except LakeboxError as exc:
        _fail(exc)


@app.command("retail-generate")
def retail_generate(
    stores: Annotated[int, typer.Option(help="how many stores")] = 150,
    months: Annotated[int, typer.Option(help="how many months of daily drops")] = 6,
    seed: Annotated[int, typer.Option(help="seed: same seed, same files")] = 7,
    out: Annotated[str | None, typer.Option(help="folder to write (default: $LAKEBOX_LANDING/retail)")] = None,
    start: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD (default: six months back)")] = None,
) -> None:
    """Write deterministic daily retail CSV drops (stores, sales, inventory, promotions)."""
    from lakebox.pipelines.retail.generator import generate_drops

    try:
        settings = _settings()
        target = out or f"{settings.landing}/retail"
        summary = generate_drops(target, stores=stores, months=months, seed=seed, start=start)
    except LakeboxError as exc:
        _fail(exc)
        return
    typer.echo(summary)


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="address to bind (loopback unless told otherwise)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8501,
) -> None:
    """Start the Streamlit dashboard over the configured warehouse."""
    from lakebox.dashboard import serve

    try:
        raise typer.Exit(serve(_settings(), host, port))
    except LakeboxError as exc:
        _fail(exc)


@app.command()
def bench(
    sizes: Annotated[str, typer.Option(help="orders sizes, lake to marts, beside the floor (0 to skip)")] = "10k,1M,10M",
    http_size: Annotated[str, typer.Option(help="orders through the HTTP API (0 to skip)")] = "100k",
    cli_size: Annotated[str, typer.Option(help="orders for the timed `lakebox run orders` (0 to skip)")] = "1k",
    postgres_size: Annotated[str, typer.Option(help="orders on PostgreSQL (0 to skip)")] = "1M",
    s3_size: Annotated[str, typer.Option(help="orders with the lake on S3/moto (0 to skip)")] = "1M",
    retail: Annotated[bool, typer.Option(help="retail: 150 stores × 6 months, then a new day")] = True,
    postgres_dsn: Annotated[str, typer.Option(help="admin DSN to create a scratch database")] = "postgresql://postgres@127.0.0.1:5432/test",
    record: Annotated[str | None, typer.Option(help="write the report here, e.g. docs/benchmarks.md")] = None,
) -> None:
    """Benchmark the pipelines (per stage: seconds, rows/s, peak RSS) beside a plain-DuckDB floor."""
    from pathlib import Path

    from lakebox.bench import parse_size, run_bench

    report = run_bench(
        sizes=[n for n in (parse_size(s) for s in sizes.split(",") if s.strip()) if n > 0],
        http_size=parse_size(http_size), cli_size=parse_size(cli_size),
        postgres_size=parse_size(postgres_size), s3_size=parse_size(s3_size), retail=retail,
        postgres_dsn=postgres_dsn, record=Path(record) if record else None,
    )
    typer.echo(report)


@app.command()
def demo() -> None:
    """Run every bundled pipeline on the embedded default and say where to look."""
    from lakebox.demo import run_demo

    try:
        code = run_demo()
    except LakeboxError as exc:
        _fail(exc)
        return
    raise typer.Exit(code)


from lakebox.observability.gc import gc  # noqa: E402 - `lakebox gc` (issue 12)

app.command("gc")(gc)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
