"""`lakebox lineage`: send the OpenLineage events waiting in the spool (`flush`), or print a
column's lineage upstream and downstream (`lakebox lineage analytics.daily_order_metrics.total_orders`).
`lakebox catalog --export DIR`: the datasets as a static site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakebox.errors import LakeboxError


def lineage(
    target: Annotated[str, typer.Argument(help="`flush`, or a column as schema.table.column")],
    timeout: Annotated[float, typer.Option(help="flush: seconds to keep sending")] = 30.0,
) -> None:
    """Flush spooled OpenLineage events to LAKEBOX_OPENLINEAGE_URL, or show a column's lineage."""
    from lakebox.log import configure_logging
    from lakebox.settings import Settings, redact

    try:
        settings = Settings.load()
        configure_logging(settings.logs_dir, settings.log_level)
        if target == "flush":
            _flush(settings, timeout)
        else:
            from lakebox.observability.lineage.columns import print_column

            print_column(settings, target)
    except LakeboxError as exc:
        typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(getattr(exc, "exit_code", 1)) from None


def _flush(settings: object, timeout: float) -> None:
    from lakebox import core_settings as core
    from lakebox.errors import ConfigError
    from lakebox.observability.lineage.delivery import Delivery
    from lakebox.settings import Settings, redact

    assert isinstance(settings, Settings)
    url = core.OPENLINEAGE_URL.optional(settings.env)
    if url is None:
        raise ConfigError("lakebox lineage flush: LAKEBOX_OPENLINEAGE_URL is not set; set it to the OpenLineage "
                          "endpoint (Marquez: http://host:5000)")
    delivery = Delivery(settings.home, url, core.OPENLINEAGE_API_KEY.optional(settings.env))
    left = delivery.finish(timeout)
    if delivery.refused:
        typer.secho(f"error: {redact(delivery.url or '')} refused an event ({redact(delivery.refused)}); "
                    f"{left} event(s) kept in {delivery.spool}", fg="red", err=True)
        raise typer.Exit(1)
    if left:
        why = redact(delivery.unreachable or f"not all sent within {timeout:g} s")
        typer.secho(f"error: {left} event(s) still spooled in {delivery.spool}: {why}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"lineage: spool empty; every event sent to {redact(delivery.url or '')}")


def catalog(
    export: Annotated[Path, typer.Option("--export", help="folder to write the static catalog into")],
) -> None:
    """Write every dataset (columns, row counts, checks, anomalies, lineage) as a static site."""
    from lakebox.log import configure_logging
    from lakebox.observability.catalog import export_catalog
    from lakebox.settings import Settings, redact
    from lakebox.warehouse import open_warehouse

    try:
        settings = Settings.load()
        configure_logging(settings.logs_dir, settings.log_level)
        with open_warehouse(settings) as wh:
            written = export_catalog(settings, wh, export)
    except LakeboxError as exc:
        typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(getattr(exc, "exit_code", 1)) from None
    typer.echo(f"catalog: {len(written) - 1} dataset(s); open {written[0]}")
