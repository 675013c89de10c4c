"""Checking lake objects against what was recorded when they landed: sha256 and size.

Objects are hashed in chunks (`Lake.digest`), never read whole into memory, on a few
threads (file reads and hashlib release the GIL), so checking a run's batches costs about
one extra read of them, spread over the cores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakebox.lake.store import Lake

WORKERS = max(1, min(4, os.cpu_count() or 1))
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Recorded:
    """What an object must be: the sha256 and size its manifest or the ledger recorded."""

    key: str
    sha256: str
    bytes: int | None
    batch_id: str | None = None


@dataclass(frozen=True)
class Difference:
    """One object that is not what was recorded. `problem`: missing | size | sha256 |
    manifest (manifest and ledger disagree, or the manifest is gone) | unrecorded (a raw
    object with no manifest) | leftover (a temporary file of an interrupted write)."""

    key: str
    problem: str
    detail: str
    batch_id: str | None = None

    def describe(self, lake: Lake) -> str:
        batch = f"batch {self.batch_id}: " if self.batch_id else ""
        return f"{batch}{lake.uri(self.key)} {self.detail}"


def digests(lake: Lake, keys: Sequence[str]) -> dict[str, tuple[str, int] | None]:
    """(sha256, size) of each object, None for a missing one, hashed on a few threads."""
    unique = list(dict.fromkeys(keys))
    if len(unique) <= 1:
        return {k: lake.digest(k) for k in unique}
    with ThreadPoolExecutor(min(WORKERS, len(unique))) as pool:
        return dict(zip(unique, pool.map(lake.digest, unique), strict=True))


def compare(recorded: Recorded, found: tuple[str, int] | None) -> Difference | None:
    """How `found` (from `digests`) differs from what was recorded; None when it does not."""
    r = recorded
    if found is None:
        return Difference(r.key, "missing", f"is missing (recorded sha256 {r.sha256}, {r.bytes} bytes)", r.batch_id)
    sha256, size = found
    if r.bytes is not None and size != r.bytes:
        return Difference(r.key, "size", f"was changed after it landed: {size} bytes, recorded {r.bytes} "
                          f"(sha256 {sha256}, recorded {r.sha256})", r.batch_id)
    if sha256 != r.sha256:
        return Difference(r.key, "sha256", f"was changed after it landed: sha256 {sha256}, recorded {r.sha256} "
                          "(same size)", r.batch_id)
    return None


def differences(lake: Lake, recorded: Sequence[Recorded]) -> list[Difference]:
    """Every recorded object that is missing or not the bytes recorded, in the order given."""
    found = digests(lake, [r.key for r in recorded])
    return [d for d in (compare(r, found[r.key]) for r in recorded) if d is not None]


@dataclass
class LakeReport:
    """What `verify_lake` found: differences fail; the notes do not."""

    objects: int = 0
    batches: int = 0
    differences: list[Difference] = field(default_factory=list)
    lost: list[tuple[str, str, str]] = field(default_factory=list)  # (batch_id, key, reason)
    unledgered: int = 0  # manifests this warehouse's ledger does not know (another warehouse's, or a crash's)


def verify_lake(lake: Lake, prefix: str, ledger: Sequence[Sequence[Any]]) -> LakeReport:
    """Every manifest under `prefix` against its object, and every ledger batch
    (batch_id, source, lake_path, sha256, bytes, status, error) against its object and manifest."""
    keys = lake.list(prefix)
    report = LakeReport()
    manifest_keys = [k for k in keys if k.endswith(MANIFEST_SUFFIX)]
    report.differences += [Difference(k, "leftover", "is a temporary file an interrupted write left behind: "
                                      "delete it") for k in keys if k.endswith(".tmp")]
    data_keys = {k for k in keys if not k.endswith((MANIFEST_SUFFIX, ".tmp"))}
    manifests: dict[str, Recorded] = {}
    for key, found in zip(manifest_keys, _read_manifests(lake, manifest_keys), strict=True):
        if isinstance(found, Recorded):
            manifests[found.key] = found
        else:
            report.differences.append(Difference(key, "manifest", f"cannot be read as a manifest: {found}"))
    recorded = dict(manifests)
    known: set[str] = set()
    for batch_id, _, key, sha256, size, status, error in ledger:
        known.add(key)
        if status == "lost":
            report.lost.append((batch_id, key, _reason(error)))
            recorded.pop(key, None)
            continue
        report.batches += 1
        kept = manifests.get(key)
        if kept is None:
            report.differences.append(Difference(key, "manifest", "has no manifest beside it", batch_id))
        elif (kept.sha256, kept.bytes) != (sha256, size):
            report.differences.append(Difference(key, "manifest", f"has a manifest that disagrees with the ledger: "
                                                 f"manifest sha256 {kept.sha256} ({kept.bytes} bytes), ledger "
                                                 f"{sha256} ({size} bytes)", batch_id))
        recorded[key] = Recorded(key, sha256, size, batch_id)
    report.unledgered = len(set(manifests) - known)
    listed = {key for _, key, _ in report.lost}  # a lost batch's object is listed, never checked
    report.differences += [Difference(k, "unrecorded", "has no manifest and no ledger row")
                           for k in sorted(data_keys - set(recorded) - listed)]
    report.objects = len(recorded)
    report.differences += differences(lake, sorted(recorded.values(), key=lambda r: r.key))
    return report


def _read_manifests(lake: Lake, keys: Sequence[str]) -> list[Recorded | str]:
    def read(key: str) -> Recorded | str:
        try:
            m = lake.read_manifest(key)
        except Exception as exc:  # noqa: BLE001 - any unreadable manifest is one finding, not the end of the check
            return f"{type(exc).__name__}: {exc}"
        return Recorded(m.key, m.sha256, m.bytes, m.batch_id)

    if not keys:
        return []
    with ThreadPoolExecutor(min(WORKERS * 2, len(keys))) as pool:
        return list(pool.map(read, keys))


def _reason(error: str | None) -> str:
    import orjson

    try:
        return str(orjson.loads(error or "{}").get("lost", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return error or ""
