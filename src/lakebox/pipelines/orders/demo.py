"""The bundled orders API, served in-process: what `lakebox demo` (and a run with no
LAKEBOX_ORDERS_API_URL) fetches from, so the pipeline runs offline."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lakebox.pipelines.spec import DemoInput

if TYPE_CHECKING:
    from lakebox.settings import Settings

DEMO_SEED = 42


@contextmanager
def bundled_api(settings: Settings) -> Iterator[DemoInput]:
    """The synthetic API on a free loopback port for as long as the block runs; its URL is
    the pipeline's api_url meanwhile."""
    from lakebox.pipelines.orders.api import create_app, serve_in_thread

    count = settings.pipeline("orders").integer("demo_orders")
    with serve_in_thread(create_app(orders=count, seed=DEMO_SEED)) as server:
        note = f"bundled orders API on {server.url} ({count:,} orders, seed {DEMO_SEED})"
        yield DemoInput({"api_url": server.url}, note)
