"""The retail pipeline's own command, `lakebox retail-generate`; registered from its spec."""

from __future__ import annotations

from typing import Annotated

import typer


def retail_generate(
    stores: Annotated[int, typer.Option(min=1, help="how many stores")] = 150,
    months: Annotated[int, typer.Option(min=1, help="how many months of daily drops")] = 6,
    seed: Annotated[int, typer.Option(help="seed: same seed, same files")] = 7,
    out: Annotated[str | None, typer.Option(help="folder to write (default: $LAKEBOX_LANDING/retail)")] = None,
    start: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD (default: six months back)")] = None,
) -> None:
    """Write deterministic daily retail CSV drops (stores, sales, inventory, promotions)."""
    from lakebox.pipelines.retail.generator import generate_drops
    from lakebox.settings import Settings

    target = out or f"{Settings.load().landing}/retail"
    typer.echo(generate_drops(target, stores=stores, months=months, seed=seed, start=start))
