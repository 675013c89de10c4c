"""`lakebox` as a test runs it to stop it mid-stage: `python stuck_child.py POINT run ...`.

At POINT the child announces itself on stderr ("lakebox-test: stuck at POINT") and waits
for a line on stdin, as a stage stuck on a slow source or a big write would, so the test
signals it there and nowhere else. POINT is one of:
  land      the first batch is in the lake, the ledger does not know it yet (fetch, land)
  load      the first rows of a load transaction are in raw.*, not committed
  snapshot  the first mart's snapshot is written, the others not
  none      no stop (synchronise on a log line instead)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def stuck_after(owner: type, name: str, point: str, when: Callable[..., bool] = lambda *args: True) -> None:
    original: Callable[..., Any] = getattr(owner, name)
    done: list[bool] = []

    def hooked(self: object, *args: object, **kwargs: object) -> object:
        result = original(self, *args, **kwargs)
        if not done and when(*args):
            done.append(True)
            sys.stderr.write(f"lakebox-test: stuck at {point}\n")
            sys.stderr.flush()
            sys.stdin.readline()
        return result

    setattr(owner, name, hooked)


def main() -> None:
    point = sys.argv.pop(1)
    from lakebox.lake import Lake
    from lakebox.warehouse.duckdb import DuckDBWarehouse
    from lakebox.warehouse.postgres import PostgresWarehouse

    if point == "land":
        stuck_after(Lake, "land_batch", point)
    elif point == "load":
        def into_raw(select_sql: str, target: str, *rest: object) -> bool:
            return target.startswith("raw.")  # not the ledger's own appends

        stuck_after(DuckDBWarehouse, "load_from_scratch", point, into_raw)
        stuck_after(PostgresWarehouse, "load_from_scratch", point, into_raw)
    elif point == "snapshot":
        stuck_after(Lake, "overwrite", point)
    from lakebox.cli import main as lakebox

    lakebox()


if __name__ == "__main__":
    main()
