"""The who_gho pipeline's own command, `lakebox who-api`; registered from its spec."""

from __future__ import annotations

from typing import Annotated

import typer


def who_api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8765,
    countries: Annotated[int, typer.Option(min=1, max=194, help="how many countries (1-194)")] = 190,
    years: Annotated[int, typer.Option(min=1, help="how many years, up to 2021")] = 20,
    seed: Annotated[int, typer.Option(help="seed: same seed, same data")] = 0,
    revise: Annotated[int, typer.Option(min=0, help="revision round: re-publish a few countries' latest years")] = 0,
    page_size: Annotated[int | None, typer.Option(min=1, help="cap pages and send @odata.nextLink")] = None,
    fault: Annotated[list[str] | None, typer.Option(help="inject a fault, e.g. 429:2, 500:1, unknown_status")] = None,
) -> None:
    """Serve the WHO GHO OData API stand-in (GET /{IndicatorCode}, /DIMENSION/COUNTRY/DimensionValues)."""
    from lakebox.pipelines.who_gho.api import main

    argv = ["--host", host, "--port", str(port), "--countries", str(countries), "--years", str(years),
            "--seed", str(seed), "--revise", str(revise)]
    argv += ["--page-size", str(page_size)] if page_size else []
    for spec in fault or []:
        argv += ["--fault", spec]
    raise typer.Exit(main(argv))
