"""`lakebox quarantine`: list, show and dismiss quarantined input (ops.quarantine)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lakebox import tables
from lakebox.errors import ConfigError, LakeboxError
from lakebox.tables import Column, Table

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse.ops.quarantine import QuarantineItem

app = typer.Typer(help="Quarantined input: list open items, show why one failed, dismiss one with a reason.",
                  no_args_is_help=True)


def _fail(exc: BaseException) -> None:
    from lakebox.settings import redact

    typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
    raise typer.Exit(getattr(exc, "exit_code", 1))


def _settings() -> Settings:
    from lakebox.log import configure_logging
    from lakebox.settings import Settings

    settings = Settings.load()
    configure_logging(settings.logs_dir, settings.log_level)
    return settings


ITEM_COLUMNS = (
    Column("id", kind="id"), Column("pipeline", kind="id", drop=3), Column("source", kind="id", drop=2),
    Column("item", kind="id"), Column("batch", "batch_id", kind="id", drop=1), Column("status", kind="status"),
    Column("opened (UTC)", "opened_at", kind="time", drop=4), Column("rules"), Column("settled", drop=5),
)


def items_table(found: list[QuarantineItem], title: str) -> Table:
    """Quarantined items as `quarantine list` and `status` show them."""
    rows = [(i.id, i.pipeline, i.source, i.item, i.batch_id, i.status, i.opened_at, _rule_names(i.rules),
             f"{i.resolved_by or ''}: {i.reason or ''}" if i.status != "open" else "") for i in found]
    return Table(ITEM_COLUMNS, rows, title)


@app.command("list")
def list_items(
    all_items: Annotated[bool, typer.Option("--all", help="also resolved and dismissed items")] = False,
    pipeline: Annotated[str | None, typer.Option(help="only this pipeline's items")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Quarantined items, open ones unless --all: a table on a terminal, tab-separated lines
    when piped (`lakebox quarantine list | grep NAME`), JSON with --json."""
    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import quarantine

    try:
        settings = _settings()
        if pipeline is not None and pipeline not in settings.pipelines:  # a typo, not "nothing quarantined"
            raise ConfigError(f"--pipeline {pipeline!r} (from the command line) is not a pipeline; "
                              f"allowed: {', '.join(settings.pipelines)}")
        with open_warehouse(settings) as warehouse:
            found = quarantine.items(warehouse, pipeline=pipeline, include_closed=all_items)
    except LakeboxError as exc:
        _fail(exc)
        return
    if not found and not as_json:
        typer.echo("No open quarantined items." if not all_items else "Nothing was ever quarantined.", err=True)
        return
    tables.show(items_table(found, ""), as_json=as_json)


@app.command()
def show(item_id: Annotated[str, typer.Argument(help="the item's id, from `lakebox quarantine list`")]) -> None:
    """The item's errors.json: every failed rule, its rows and samples, and what to do."""
    from lakebox.lake import Lake

    try:
        settings = _settings()
        item = _get(settings, item_id)
        document = Lake.from_settings(settings).read_bytes(f"{item.quarantine_path}.errors.json")
    except LakeboxError as exc:
        _fail(exc)
        return
    typer.echo(document.decode())


@app.command()
def dismiss(
    item_id: Annotated[str, typer.Argument(help="the item's id, from `lakebox quarantine list`")],
    reason: Annotated[str, typer.Option(help="why the data is not coming back (kept in ops.quarantine)")],
) -> None:
    """Close an open item without a corrected version; runs stop ending `partial` for it."""
    import getpass

    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import quarantine

    try:
        if not reason.strip():
            raise ConfigError("--reason must say why the item is dismissed")
        settings = _settings()
        item = _get(settings, item_id)
        if item.status != quarantine.OPEN:
            raise ConfigError(f"quarantined item {item_id} is already {item.status}; nothing to dismiss")
        with open_warehouse(settings) as warehouse:
            quarantine.dismiss(warehouse, item_id, reason=reason.strip(), by=getpass.getuser())
    except LakeboxError as exc:
        _fail(exc)
        return
    typer.echo(f"dismissed {item_id} ({item.source} {item.item}): {reason.strip()}")


def _get(settings: Settings, item_id: str) -> QuarantineItem:
    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import quarantine

    with open_warehouse(settings) as warehouse:
        item = quarantine.get(warehouse, item_id)
    if item is None:
        raise ConfigError(f"no quarantined item {item_id!r}; see `lakebox quarantine list --all`")
    return item


def _rule_names(rules: str) -> str:
    import orjson

    try:
        return ", ".join(f"{r['rule']}({r['column']})" if r.get("column") else r["rule"] for r in orjson.loads(rules))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return rules
