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
from lakebox.project import pin_project
from lakebox.tables import Column

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


@app.callback()
def _project(
    project: Annotated[str | None, typer.Option(
        "--project", metavar="DIR", help="the lakebox project (a folder with lakebox.toml); default: "
        "$LAKEBOX_PROJECT, else the nearest lakebox.toml here or above")] = None,
) -> None:
    """Taken from the command line before it is parsed (lakebox.project.pin_project): the
    pipelines, and so the commands, depend on it."""


def _settings(human: bool = False, level: str | None = None) -> Settings:
    from lakebox.log import configure_logging
    from lakebox.settings import Settings

    settings = Settings.load()
    configure_logging(settings.logs_dir, level or settings.log_level, human=human)
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="errors only: no progress, no summary")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="every log line (info, and debug with "
                                          "--log-format json)")] = False,
    log_format: Annotated[str, typer.Option(help="stderr's log lines: human (the default on a terminal) or json "
                                            "(the default otherwise); the log file is always JSON lines")] = "",
) -> None:
    """Run pipelines end to end: ingest, check, load, transform, snapshot.

    On a terminal: progress per stage, warnings as short lines, a summary; the JSON log
    lines go to $LAKEBOX_HOME/logs/ (and to stderr when it is not a terminal).
    Exit 0 when all succeed, 4 when some ended partial (quarantined input open) and none
    failed, 1 when any failed; 143 on SIGTERM and 130 on Ctrl-C, the run recorded as failed."""
    from contextlib import nullcontext

    from lakebox.interrupts import RunInterrupted
    from lakebox.lake import Lake
    from lakebox.run_view import run_view
    from lakebox.runner import run_pipeline
    from lakebox.warehouse import open_warehouse

    if log_format not in ("", "human", "json"):
        _fail(ConfigError(f"--log-format {log_format!r}: use human or json"))
    human = (log_format or ("human" if sys.stderr.isatty() else "json")) == "human"
    try:
        if human:
            from lakebox.log import quiet_libraries

            quiet_libraries()
            settings = _settings(True, "ERROR" if quiet else "INFO" if verbose else "WARNING")
        else:
            settings = _settings(level="ERROR" if quiet else "DEBUG" if verbose else None)
        chosen = _chosen(pipelines)
        _refuse_broken_models(settings)
        lake = Lake.from_settings(settings)
        with open_warehouse(settings) as warehouse, \
                run_view() if human and not quiet and sys.stderr.isatty() else nullcontext():
            outcomes = [run_pipeline(p, settings, lake, warehouse, {"full_refresh": full_refresh}) for p in chosen]
            from lakebox.observability import after_runs  # Pushgateway, alerts (issue 12)

            after_runs(settings, outcomes, warehouse)
    except (LakeboxError, RunInterrupted) as exc:  # RunInterrupted: SIGTERM/SIGINT, exit 128 + its number
        _fail(exc)
        return
    _print_outcomes(outcomes, quiet)
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


OUTCOME_COLUMNS = (Column("pipeline", kind="id"), Column("status", kind="status"),
                   Column("seconds", kind="number", digits=1, drop=2), Column("rows in", kind="number", drop=1),
                   Column("rows out", kind="number"), Column("quarantined", "open_quarantine", kind="number", drop=3),
                   Column("run id", kind="id", drop=4))


def _print_outcomes(outcomes: list[RunOutcome], quiet: bool = False) -> None:
    """The summary on stderr (unless quiet), then each run's error or open items."""
    from lakebox import tables

    if not quiet:
        rows = [(o.pipeline, o.status, o.duration_s, o.rows_in, o.rows_out, len(o.quarantined), o.run_id)
                for o in outcomes]
        tables.show(tables.Table(OUTCOME_COLUMNS, rows, "lakebox run"), err=True)
    for o in outcomes:
        if o.error:
            colour = "yellow" if o.status == "partial" else "red"
            typer.secho(f"{o.pipeline} {o.status}: ", fg=colour, err=True, nl=False)
            typer.echo(o.error, err=True)


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

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


@app.command()
def status(limit: Annotated[int, typer.Option(min=1, max=STATUS_MAX_LIMIT, help="how many recent runs to show")] = 20,
           as_json: JsonOpt = False) -> None:
    """Recent pipeline runs from the audit trail (ops.pipeline_runs) and open quarantined items."""
    from lakebox import tables
    from lakebox.locks import shown_run_state
    from lakebox.quarantine_cli import items_table
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
    shown = []
    for run_id, pipeline, state, started, seconds, rows_in, rows_out, error in rows:
        state, error = shown_run_state(settings.home, pipeline, run_id, state, error)
        shown.append((run_id, pipeline, state, started, seconds, rows_in or 0, rows_out or 0,
                      (error or "").splitlines()[0] if error else ""))
    runs = tables.Table(RUN_COLUMNS, shown, f"recent runs ({where})")
    held = items_table(waiting, f"{len(waiting)} open quarantined item(s) (lakebox quarantine show ID | "
                       "dismiss ID --reason ...)")
    if as_json:
        tables.print_json({"warehouse": where, "runs": runs.records(), "open_quarantine": held.records()})
        return
    if not rows:
        typer.echo(f"No runs yet in {where}. Try: lakebox run")
        return
    tables.show(runs)
    if not waiting:
        typer.echo("No open quarantined items.")
        return
    typer.echo()
    tables.show(held)


# a run id holds its pipeline and start time, so those go first on a narrow terminal
RUN_COLUMNS = (Column("run id", kind="id"), Column("pipeline", kind="id", drop=1), Column("status", kind="status"),
               Column("started (UTC)", "started_at", kind="time", drop=4), Column("seconds", kind="number", digits=2, drop=3),
               Column("rows in", kind="number", drop=2), Column("rows out", kind="number"), Column("error"))


@app.command()
def config(
    doc: Annotated[bool, typer.Option(help="under each setting, what it does and the values it takes")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show every setting in force, the core's and each pipeline's, and where each came from
    (env, lakebox.toml, default); secrets redacted. A bad setting exits 2, naming it."""
    from lakebox import tables
    from lakebox.settings import Settings

    try:
        settings = Settings.load()
    except LakeboxError as exc:
        _fail(exc)
        return
    owner = {variable: f"pipeline {name}" for name, values in settings.pipelines.items()
             for variable in values.variables.values()}
    columns = [tables.Column("setting", "name", kind="id"), tables.Column("value", kind="id"),
               tables.Column("from", "origin", kind="status"), tables.Column("part", drop=1)]
    if doc or as_json:
        columns += [tables.Column("doc"), tables.Column("allowed", drop=3), tables.Column("toml key", drop=2)]
    rows = []
    for (name, value, origin), declared in zip(settings.shown(), settings.declared, strict=True):
        row: list[Any] = [name, value, origin, owner.get(name, "core")]
        if doc or as_json:
            row += [declared.doc, declared.kind.allowed, declared.toml_key or "(environment only)"]
        rows.append(row)
    if doc and not as_json and tables.is_terminal():  # the doc under each setting, wrapped, not cut
        import shutil
        import textwrap

        width = shutil.get_terminal_size().columns
        for name, value, origin, part, text, allowed, toml_key in rows:
            typer.echo(f"{name}  {value}  {origin}  ({part})")
            typer.echo(textwrap.fill(f"{text}; allowed: {allowed}; lakebox.toml: {toml_key}", width,
                                     initial_indent="    ", subsequent_indent="    "))
        return
    tables.show(tables.Table(columns, rows), as_json=as_json)


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
    project: Annotated[bool, typer.Option(help="a project of 20 pipelines: `lakebox --help` and `lakebox check`; "
                                          "`lakebox check` on 50 declarative pipelines")] = True,
    lineage: Annotated[bool, typer.Option(help="column lineage of every bundled model, cold and cached")] = True,
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
        serve=serve, observability=observability, project=project, lineage=lineage,
        pipeline_sizes={"github_commits": parse_size(github_size), "who_gho": int(who)},
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


@app.command()
def init(folder: Annotated[str, typer.Argument(help="the project's folder (created when missing)")]) -> None:
    """Start a project of your own: lakebox.toml, .gitignore, a README of the next commands
    and an example pipeline (pipelines/weather) that runs offline."""
    from pathlib import Path

    from lakebox.project import init_project

    try:
        written = init_project(Path(folder))
    except LakeboxError as exc:
        _fail(exc)
        return
    typer.echo(f"a lakebox project in {folder} ({len(written)} files); next:\n"
               f"  cd {folder} && lakebox run && lakebox status   # then see README.md")


@app.command("tutorial-api")
def tutorial_api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8765,
    token: Annotated[str | None, typer.Option(help="the bearer token callers must send (default: any); a "
                                              "stand-in's, not a secret")] = None,
) -> None:
    """Serve the air-quality API of docs/pipelines.md's tutorial (GET /v3/measurements)."""
    from lakebox.declarative.tutorial_api import create_app
    from lakebox.ingest.standin import serve_forever

    try:
        serve_forever(create_app(token), host, port, "docs/pipelines.md's tutorial; Ctrl-C stops it")
    except LakeboxError as exc:
        _fail(exc)


@app.command()
def check() -> None:
    """Check the project before running it: every pipeline's folder and spec, the settings,
    the references each spec makes, and the one dbt project (parsed; the project's own models
    compiled). Lists every problem at once; exit 2 when there is any."""
    from lakebox.project_check import project_problems

    problems = project_problems()
    if problems:
        typer.secho(f"{len(problems)} problem(s):", fg="red", err=True)
        for line in problems:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(2)
    typer.echo("ok: pipelines, settings and the dbt project check out")


schema_app = typer.Typer(help="Print the JSON Schema of a lakebox file, for editors (e.g. taplo, VS Code's "
                          "Even Better TOML).", no_args_is_help=True)
app.add_typer(schema_app, name="schema")


@schema_app.command("pipeline")
def schema_pipeline() -> None:
    """The JSON Schema (draft 2020-12) of pipeline.toml: every key, what it takes and does."""
    from importlib.resources import files

    typer.echo(files("lakebox.declarative").joinpath("pipeline.schema.json").read_text(encoding="utf-8"), nl=False)


def _refuse_broken_models(settings: Settings) -> None:
    """In a project, a dbt project that does not parse is refused before anything runs."""
    from lakebox.pipelines import discover
    from lakebox.project import find_project

    if find_project(settings.env) is not None:
        from lakebox.transform.dbt import parse_before_run

        parse_before_run(settings, discover(settings.env).values())


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


pin_project(sys.argv[1:])
try:
    _add_pipeline_commands()
    _UNUSABLE_PIPELINE: ConfigError | None = None
except ConfigError as exc:  # reported by main() as one line, not a traceback at import
    _UNUSABLE_PIPELINE = exc


def _command(argv: list[str]) -> str | None:
    """The command named on the line (after the global options)."""
    after_project = False
    for arg in argv:
        if not after_project and not arg.startswith("-"):
            return arg
        after_project = arg == "--project"
    return None


def main() -> None:
    if _UNUSABLE_PIPELINE is not None and _command(sys.argv[1:]) not in ("check", "init"):
        typer.secho(f"error: {_UNUSABLE_PIPELINE}", fg="red", err=True)
        sys.exit(_UNUSABLE_PIPELINE.exit_code)
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
