"""One process at a time per pipeline, and one watcher, per home: an exclusive lock file.

A second `lakebox run retail` while one is running would close the first one's audit row
as interrupted and race it for the same batches. The lock is an flock on
`$LAKEBOX_HOME/locks/<name>.lock`, released by the OS when the process ends, however it
ends, so a crash never leaves a stale lock. It guards one machine: runs from several
machines against one PostgreSQL warehouse need a scheduler that runs each pipeline once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakebox.errors import BusyError


@contextmanager
def exclusive(home: Path, name: str, what: str) -> Iterator[None]:
    """Hold `name`'s lock for the block, or raise BusyError naming `what` and the holder's pid."""
    import fcntl

    folder = home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise BusyError(
                f"{what} is already running in another process{f' (pid {holder})' if holder else ''} "
                f"on this home ({home}); wait for it to finish, or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
