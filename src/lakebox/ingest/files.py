"""A landing folder of dropped files, on disk or S3 (fsspec): what waits in it, cheaply.

Shared by every file-fed source (retail, a declarative `files` pipeline). A file listed
with the same size and modification time (or ETag) as when it was last read is not read
again: each source keeps `file name -> stamp` as SEEN_STATE in ops.source_state, the key
the scheduler's drop sensor also reads (lakebox.orchestration.drops).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

SEEN_STATE = "landing_seen"  # file name -> size:mtime when last read, so unchanged files are not re-read


def stamp(entry: Mapping[str, object]) -> str:
    """Size and modification time (or ETag) of a listed file; empty when the listing has neither."""
    changed = entry.get("mtime") or entry.get("LastModified") or entry.get("ETag")
    return f"{entry.get('size')}:{changed}" if changed else ""


def landing_files(fs: Any, root: str) -> list[dict[str, Any]] | None:
    """The files waiting in the landing folder (None: no folder), listed afresh: fsspec keeps
    S3 listings per filesystem object, and a long-lived watcher must see each new drop.
    Dot-files are files still being written (write aside, then rename into place)."""
    fs.invalidate_cache(root)
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        return None
    return sorted(
        (e for e in entries if e.get("type") == "file" and not posixpath.basename(e["name"]).startswith(".")),
        key=lambda e: e["name"],
    )


def landing_fingerprint(url: str, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Name and stamp of every file waiting at `url`: what `lakebox watch` and the drop sensor
    compare to notice a new or corrected drop without reading any file."""
    from lakebox.lake.remote import fs_for_url

    fs, root = fs_for_url(url, env)
    return tuple((posixpath.basename(e["name"]), stamp(e)) for e in landing_files(fs, root) or [])
