"""`lakebox demo`'s retail input: six months of generated drops, written once into an empty
landing folder (a folder that holds files is left as it is)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lakebox.pipelines.spec import DemoInput

if TYPE_CHECKING:
    from lakebox.settings import Settings

DEMO_STORES, DEMO_MONTHS, DEMO_SEED = 150, 6, 7


@contextmanager
def generated_drop(settings: Settings) -> Iterator[DemoInput]:
    folder = Path(settings.landing) / "retail"
    if "://" in settings.landing or (folder.is_dir() and any(folder.iterdir())):
        yield DemoInput()
        return
    from lakebox.pipelines.retail.generator import generate_drops

    summary = generate_drops(str(folder), stores=DEMO_STORES, months=DEMO_MONTHS, seed=DEMO_SEED, start=None)
    yield DemoInput(note=summary)
