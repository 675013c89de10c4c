"""The orders pipeline's own command, `lakebox orders-api`; registered from its spec."""

from __future__ import annotations

from typing import Annotated

import typer


def orders_api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8000,
    orders: Annotated[int, typer.Option(min=0, help="how many synthetic orders to serve")] = 10_000,
    seed: Annotated[int, typer.Option(help="seed: same seed, same orders")] = 42,
    fault: Annotated[list[str] | None, typer.Option(help="inject a fault, e.g. 429:2, 500:1, slow:1:delay=0.5")] = None,
) -> None:
    """Serve the synthetic orders REST API (GET /v1/orders)."""
    from lakebox.pipelines.orders.api import serve_forever

    serve_forever(host, port, orders, seed, fault or [])
