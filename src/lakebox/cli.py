"""The `lakebox` command. Heavy libraries are imported inside the commands that need them,
so `lakebox --help` and light commands start fast."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakebox import lake_cli, quarantine_cli
from lakebox.errors import ConfigError, LakeboxError
from lakebox.lineage_cli import catalog as catalog_command
from lakebox.lineage_cli import lineage as lineage_command
from lakebox.ml_cli import ml_app
from lakebox.orchestration.serve import serve as serve_command
from lakebox.orchestration.worker import worker as worker_command

if TYPE_CHECKING:
    from lakebox.runner import Pipeline, RunOutcome
    from lakebox.settings import Settings

app = typer.Typer(
    help="lakebox: a local-first data & ML platform. Pipelines run in-process on an embedded "
    "DuckDB warehouse by default; URLs switch each part to PostgreSQL or S3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(quarantine_cli.app, name="quarantine")
app.add_typer(lake_cli.app, name="lake")
app.add_typer(ml_app, name="ml")
app.command("serve")(serve_command)
app.command("worker")(worker_command)
app.command("lineage")(lineage_command)
app.command("catalog")(catalog_command)


def _settings() -> Settings:
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
    """Run pipelines end to end: ingest, check, load, transform, snapshot.

    Exit 0 when all succeed, 4 when some ended partial (quarantined input open) and none
    failed, 1 when any failed; 143 on SIGTERM and 130 on Ctrl-C, the run recorded as failed."""
    from lakebox.interrupts import RunInterrupted
    from lakebox.lake import Lake
    from lakebox.runner import run_pipeline
    from lakebox.warehouse import open_warehouse

    try:
        settings = _settings()
        chosen = _chosen(pipelines)
        lake = Lake.from_settings(settings)
        with open_warehouse(settings) as warehouse:
            outcomes = [run_pipeline(p, settings, lake, warehouse, {"full_refresh": full_refresh}) for p in chosen]
            from lakebox.observability import after_runs  # Pushgateway, alerts (issue 12)

            after_runs(settings, outcomes, warehouse)
    except (LakeboxError, RunInterrupted) as exc:  # RunInterrupted: SIGTERM/SIGINT, exit 128 + its number
        _fail(exc)
        return
    _print_outcomes(outcomes)
    raise typer.Exit(run_exit_code(outcomes))


EXIT_PARTIAL = 4


def run_exit_code(outcomes: list[RunOutcome]) -> int:
    """0: all succeeded; 4: some ended partial and none failed; 1: any failed."""
    statuses = {o.status for o in outcomes}
    if statuses - {"success", "partial"}:
        return 1
    return EXIT_PARTIAL if "partial" in statuses else 0


def _chosen(names: list[str] | None) -> list[Pipeline]:
    """The named pipelines, ready to run (default: every pipeline found)."""
    from lakebox.pipelines import discover, get_pipeline

    return [get_pipeline(name) for name in (names or list(discover()))]


def _print_outcomes(outcomes: list[RunOutcome]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title="lakebox run", show_lines=False)
    for col in ("pipeline", "status", "seconds", "rows in", "rows out", "open quarantine", "run id"):
        table.add_column(col)
    for o in outcomes:
        colour = {"success": "green", "partial": "yellow"}.get(o.status, "red")
        table.add_row(o.pipeline, f"[{colour}]{o.status}[/]", f"{o.duration_s:.2f}", str(o.rows_in),
                      str(o.rows_out), str(len(o.quarantined)), o.run_id)
    console.print(table)
    for o in outcomes:
        if o.error:
            colour = "yellow" if o.status == "partial" else "red"
            console.print(f"[{colour}]{o.pipeline} {o.status}:[/] {o.error}", markup=True, highlight=False)


@app.command()
def watch(
    pipelines: Annotated[list[str] | None, typer.Argument(help="pipelines to watch (default: all)")] = None,
    every: Annotated[float, typer.Option(help="seconds between runs of polled pipelines (orders)")] = 60.0,
    poll: Annotated[float, typer.Option(help="seconds between looks at file-fed pipelines' input (retail)")] = 0.5,
    max_runs: Annotated[int, typer.Option(help="stop after this many runs (0: until stopped)")] = 0,
    metrics_port: Annotated[int | None, typer.Option(min=0, max=65535,
                                                     help="serve /metrics here (default: LAKEBOX_METRICS_PORT)")] = None,
) -> None:
    """Stay up and run pipelines as their input arrives, with dbt kept warm (Ctrl-C or SIGTERM stops)."""
    import signal
    import threading

    from lakebox.log import get_logger
    from lakebox.watch import watch as watch_pipelines

    if every <= 0 or poll <= 0 or max_runs < 0:
        _fail(ValueError("--every and --poll must be positive and --max-runs not negative"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runs = None  # unknown after Ctrl-C
    try:
        settings = _settings()
        chosen = _chosen(pipelines)
        from lakebox.observability import watching  # /metrics and freshness checks

        with watching(settings, metrics_port) as observer:
            runs = watch_pipelines(settings, chosen, every=every, poll=poll, max_runs=max_runs or None, stop=stop,
                                   on_run=observer.on_run)
    except LakeboxError as exc:
        _fail(exc)
        return
    except KeyboardInterrupt:
        pass
    get_logger().info("watch stopped", runs=runs)


STATUS_MAX_LIMIT = 1_000_000  # a larger number overflows the warehouse's LIMIT (a 64-bit integer)


@app.command()
def status(limit: Annotated[int, typer.Option(min=1, max=STATUS_MAX_LIMIT, help="how many recent runs to show")] = 20,
           ) -> None:
    """Recent pipeline runs from the audit trail (ops.pipeline_runs) and open quarantined items."""
    from rich.console import Console
    from rich.table import Table

    from lakebox.locks import shown_run_state
    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import quarantine, recent_runs

    try:
        settings = _settings()
        with open_warehouse(settings) as warehouse:
            rows = recent_runs(warehouse, limit)
            waiting = quarantine.items(warehouse)
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
        state, error = shown_run_state(settings.home, pipeline, run_id, state, error)
        colour = {"success": "green", "failed": "red"}.get(state, "yellow")
        table.add_row(run_id, pipeline, f"[{colour}]{state}[/]", str(started)[:19],
                      f"{seconds:.2f}" if seconds is not None else "", str(rows_in or 0), str(rows_out or 0),
                      (error or "").splitlines()[0][:120] if error else "")
    console.print(table)
    if not waiting:
        console.print("No open quarantined items.")
        return
    console.print(f"[yellow]{len(waiting)} open quarantined item(s)[/] (lakebox quarantine show ID | dismiss ID "
                  "--reason ...):", highlight=False)
    for item in waiting:
        console.print(f"  {item.id}  {item.pipeline}  {item.source}  {item.item}  batch {item.batch_id}  "
                      f"opened {str(item.opened_at)[:19]}", highlight=False, soft_wrap=True)


@app.command()
def config(
    doc: Annotated[bool, typer.Option(help="under each setting, what it does and the values it takes")] = False,
) -> None:
    """Show every setting in force, the core's and each pipeline's, and where each came from
    (env, lakebox.toml, default); secrets redacted. A bad setting exits 2, naming it."""
    from lakebox.settings import Settings

    try:
        settings = Settings.load()
    except LakeboxError as exc:
        _fail(exc)
        return
    rows = settings.shown()
    width = max(len(name) for name, _, _ in rows)
    value_width = min(60, max(len(value) for _, value, _ in rows))
    owner = {variable: f"pipeline {name}" for name, values in settings.pipelines.items()
             for variable in values.variables.values()}
    group = None
    for (name, value, origin), declared in zip(rows, settings.declared, strict=True):
        if owner.get(name, "core") != group:
            group = owner.get(name, "core")
            typer.echo(f"# {group}")
        typer.echo(f"{name:{width}}  {value:{value_width}}  {origin}")
        if doc:
            where = f"; lakebox.toml: {declared.toml_key}" if declared.toml_key else "; environment only"
            typer.echo(f"{'':{width}}    {declared.doc}; allowed: {declared.kind.allowed}{where}")


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


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="address to bind (loopback unless told otherwise)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 8501,
) -> None:
    """Start the Streamlit dashboard over the configured warehouse."""
    from lakebox.dashboard import serve

    try:
        raise typer.Exit(serve(_settings(), host, port))
    except LakeboxError as exc:
        _fail(exc)


def _sizes(text: str) -> str:
    """A usage error, not a traceback, for a size bench cannot read."""
    from lakebox.bench import parse_size

    try:
        [parse_size(size) for size in text.split(",") if size.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: write sizes as 2500, 10k or 1M, comma-separated (0 to skip)") from None
    return text


@app.command()
def bench(
    sizes: Annotated[str, typer.Option(callback=_sizes,
                                       help="orders sizes, lake to marts, beside the floor (0 to skip)")] = "10k,1M,10M",
    http_size: Annotated[str, typer.Option(callback=_sizes, help="orders through the HTTP API (0 to skip)")] = "100k",
    cli_size: Annotated[str, typer.Option(callback=_sizes, help="orders for the timed `lakebox run orders` (0 to skip)")] = "1k",
    postgres_size: Annotated[str, typer.Option(callback=_sizes, help="orders on PostgreSQL (0 to skip)")] = "1M",
    s3_size: Annotated[str, typer.Option(callback=_sizes, help="orders with the lake on S3/moto (0 to skip)")] = "1M",
    retail: Annotated[bool, typer.Option(help="retail: 150 stores × 6 months, then a new day")] = True,
    github_size: Annotated[str, typer.Option(callback=_sizes,
                                             help="github_commits: commits to the marts, and its ML (0 to skip)")] = "10k",
    serve: Annotated[bool, typer.Option(help="`lakebox serve` start-up and stop, a 1k-order run through Dagster, "
                                        "the Dagster daemon's memory over 100 schedule ticks")] = True,
    observability: Annotated[bool, typer.Option(help="the HTTP run with Pushgateway and Loki beside it plain, "
                                                "and /metrics with 50 pipelines' series")] = True,
    who: Annotated[bool, typer.Option(help="who_gho: 190 countries × 20 years, `lakebox run who_gho` in a new home")] = True,
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
        postgres_dsn=postgres_dsn, record=Path(record) if record else None, github_size=parse_size(github_size),
        serve=serve, observability=observability, who=who,
    )
    typer.echo(report)


@app.command()
def demo() -> None:
    """Run every pipeline on the embedded default, fed offline, and say where to look."""
    from lakebox.demo import run_demo

    try:
        code = run_demo()
    except LakeboxError as exc:
        _fail(exc)
        return
    raise typer.Exit(code)


from lakebox.observability.gc import gc  # noqa: E402 - after the core commands

app.command("gc")(gc)


def _add_pipeline_commands() -> None:
    """Each pipeline's own commands (e.g. orders-api), as its spec declares them."""
    from lakebox.pipelines import discover

    taken = {info.name or info.callback.__name__.replace("_", "-") for info in app.registered_commands
             if info.callback is not None}
    taken |= {info.name for info in app.registered_groups if info.name}
    for spec in discover().values():
        for command in spec.commands:
            if command.name in taken:
                raise ConfigError(f"pipeline {spec.name!r} declares the command {command.name!r}, "
                                  "which another command already has; rename it in its spec")
            taken.add(command.name)
            app.command(command.name)(_guarded(spec.resolve(command.fn)))


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A pipeline's command, its LakeboxErrors shown as a line and an exit code, as every command's."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LakeboxError as exc:
            _fail(exc)

    return command


try:
    _add_pipeline_commands()
    _UNUSABLE_PIPELINE: ConfigError | None = None
except ConfigError as exc:  # reported by main() as one line, not a traceback at import
    _UNUSABLE_PIPELINE = exc


def main() -> None:
    if _UNUSABLE_PIPELINE is not None:
        typer.secho(f"error: {_UNUSABLE_PIPELINE}", fg="red", err=True)
        sys.exit(_UNUSABLE_PIPELINE.exit_code)
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
