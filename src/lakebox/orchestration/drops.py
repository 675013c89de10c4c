"""Which runs a file-fed pipeline's new input asks for: one per new drop, per day.

A file-fed pipeline's `waiting_input` fingerprint lists its waiting files as (name, stamp)
pairs. The sensor keeps the last two listings in its cursor: a file is taken once the
listing that shows it stayed the same for one evaluation (a file still being written is not
read half-way, as in `lakebox watch`), and each day named in the new or changed files' names
becomes one run of that day's partition. Files naming no day (a store master) go with the
newest day waiting. Dagster skips a run key it has seen, so a drop runs once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


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


def new_drops(fingerprint: object, cursor: str | None) -> tuple[list[DropRun], str]:
    """The runs the listing asks for now, and the cursor to keep."""
    state = json.loads(cursor) if cursor else {}
    listing = _pairs(fingerprint)
    seen, taken = state.get("seen"), state.get("taken", {})
    if listing != seen:  # changed since the last look: wait until it stays still
        return [], json.dumps({"seen": listing, "taken": taken}, sort_keys=True)
    fresh = {name: stamp for name, stamp in listing.items() if taken.get(name) != stamp}
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
