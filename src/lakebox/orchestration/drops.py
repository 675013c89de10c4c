"""Which runs a file-fed pipeline's new input asks for: one per new drop, per day.

A file-fed pipeline's `waiting_input` fingerprint lists its waiting files as (name, stamp)
pairs. The sensor keeps the last two listings in its cursor: a file is taken once the
listing that shows it stayed the same for one evaluation (a file still being written is not
read half-way, as in `lakebox watch`), and each day named in the new or changed files' names
becomes one run of that day's partition. Files naming no day (a store master) go with the
newest day waiting. Dagster skips a run key it has seen, so a drop runs once.

A file lakebox already read (by `lakebox run`, `watch`, the demo or an earlier serve) asks
for no run: a file-fed source keeps what it read as `landing_seen` in ops.source_state
(file name -> the stamp it had), and a file listed with that same stamp is not new, whether
the sensor's cursor is fresh (the first `serve` of a home) or not.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.settings import Settings

_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
LANDING_SEEN = "landing_seen"  # ops.source_state key of a file-fed source (e.g. retail.source.SEEN_STATE)


@dataclass(frozen=True)
class DropRun:
    day: str
    run_key: str
    files: tuple[str, ...]


def _pairs(fingerprint: object) -> dict[str, str]:
    items: Iterable[object] = fingerprint if isinstance(fingerprint, (tuple, list)) else (fingerprint,)
    pairs = {}
    for item in items:
        name, stamp = item if isinstance(item, (tuple, list)) and len(item) == 2 else (str(item), "")
        pairs[str(name)] = str(stamp)
    return pairs


def already_read(settings: Settings, sources: Sequence[str]) -> dict[str, str] | None:
    """The files the sources' runs have read, with their stamps then (empty: none yet);
    None while a run holds the DuckDB warehouse (look again at the next evaluation)."""
    import orjson

    from lakebox.errors import WarehouseError
    from lakebox.warehouse import open_warehouse

    if no_warehouse_yet(settings):
        return {}
    read: dict[str, str] = {}
    try:
        with open_warehouse(settings, read_only=True) as warehouse:
            if not warehouse.table_exists("ops", "source_state"):
                return {}
            marks = ", ".join("?" for _ in sources)
            for (value,) in warehouse.query(f"select value from ops.source_state where state_key = ? "
                                            f"and source in ({marks})", [LANDING_SEEN, *sources]) if sources else []:
                read.update(orjson.loads(value))
    except WarehouseError:
        return None
    return read


def no_warehouse_yet(settings: Settings) -> bool:
    """A warehouse no run has created yet, such as a new DuckDB file (a reader must not create it)."""
    from lakebox.warehouse.kinds import kind_of

    return not kind_of(settings).exists(settings.warehouse)


def new_drops(fingerprint: object, cursor: str | None,
              read: Mapping[str, str] | None = None) -> tuple[list[DropRun], str]:
    """The runs the listing asks for now, and the cursor to keep; `read`: the files lakebox
    has read already (name -> stamp), which ask for no run."""
    state = json.loads(cursor) if cursor else {}
    listing = _pairs(fingerprint)
    seen, taken = state.get("seen"), state.get("taken", {})
    if listing != seen:  # changed since the last look: wait until it stays still
        return [], json.dumps({"seen": listing, "taken": taken}, sort_keys=True)
    read = read or {}
    fresh = {name: stamp for name, stamp in listing.items()
             if taken.get(name) != stamp and not (stamp and read.get(name) == stamp)}
    days: dict[str, list[str]] = {}
    undated: list[str] = []
    for name in sorted(fresh):
        found = _DAY.search(name)
        (days.setdefault(found.group(1), []) if found else undated).append(name)
    if undated:
        newest = max([*days, *(d.group(1) for d in map(_DAY.search, listing) if d)], default=None)
        if newest is not None:
            days.setdefault(newest, []).extend(undated)
    runs = []
    for day, files in sorted(days.items()):
        digest = hashlib.sha256(json.dumps([[f, fresh[f]] for f in sorted(files)]).encode()).hexdigest()[:16]
        runs.append(DropRun(day, f"{day}:{digest}", tuple(sorted(files))))
    return runs, json.dumps({"seen": listing, "taken": listing}, sort_keys=True)
