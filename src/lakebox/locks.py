"""One process at a time per pipeline, and one watcher, per home: an exclusive lock file.

A second `lakebox run retail` while one is running would close the first one's audit row
as interrupted and race it for the same batches. The lock is an flock on
`$LAKEBOX_HOME/locks/<name>.lock`, released by the OS when the process ends, however it
ends, so a crash never leaves a stale lock. It guards one machine: runs from several
machines against one PostgreSQL warehouse need a scheduler that runs each pipeline once.
The file keeps the last holder's pid and run id, so `lakebox status` can tell a run left
`running` by a killed process (SIGKILL, a crash) from one still under way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakebox.errors import BusyError


@contextmanager
def exclusive(home: Path, name: str, what: str, note: str = "") -> Iterator[None]:
    """Hold `name`'s lock for the block, or raise BusyError naming `what` and the holder's pid.
    The file keeps the holder's pid and `note` (a run id) after it ends, for `process_gone`."""
    import fcntl

    folder = home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").split("\n", 1)[0].strip()
            raise BusyError(
                f"{what} is already running in another process{f' (pid {holder})' if holder else ''} "
                f"on this home ({home}); wait for it to finish, or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{note}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def process_gone(home: Path, name: str, note: str) -> bool:
    """True when `name`'s lock was last taken with `note` (a run id) and its process has
    ended: a run still marked `running` was then killed (SIGKILL, a crash, a power cut).
    False when it is alive, or the lock does not tell (never taken here: another home or
    machine may be running it). Reads the file only, so a run starting now is not disturbed."""
    try:
        pid_line, _, held_for = (home / "locks" / f"{name}.lock").read_text().partition("\n")
        pid = int(pid_line)
    except (OSError, ValueError):
        return False
    if held_for.strip() != note:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


KILLED_RUN = "its process ended before the run finished; the next run closes it"


def shown_run_state(home: Path, pipeline: str, run_id: str, state: str, error: str | None) -> tuple[str, str | None]:
    """A run's state as `lakebox status` and the dashboard show it: a run still `running`
    whose process has gone (see `process_gone`) is `interrupted`."""
    if state == "running" and process_gone(home, f"run-{pipeline}", run_id):
        return "interrupted", KILLED_RUN
    return state, error
