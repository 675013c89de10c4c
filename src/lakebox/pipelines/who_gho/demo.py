"""The GHO stand-in, served in-process: what `lakebox demo` fetches from, so the pipeline
runs offline (190 countries × 20 years × 3 sexes × 2 indicators, seed 42)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lakebox.pipelines.spec import DemoInput

if TYPE_CHECKING:
    from lakebox.settings import Settings

DEMO_COUNTRIES, DEMO_YEARS, DEMO_SEED = 190, 20, 42


@contextmanager
def bundled_api(settings: Settings) -> Iterator[DemoInput]:
    """The stand-in on a free loopback port for as long as the block runs; its URL is the
    pipeline's api_url meanwhile."""
    from lakebox.pipelines.who_gho.api import serve

    with serve(countries=DEMO_COUNTRIES, years=DEMO_YEARS, seed=DEMO_SEED) as server:
        note = (f"bundled WHO GHO stand-in on {server.url} ({DEMO_COUNTRIES} countries, {DEMO_YEARS} years, "
                f"seed {DEMO_SEED})")
        yield DemoInput({"api_url": server.url}, note)
