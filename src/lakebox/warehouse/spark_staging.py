"""Staged batch files of a Spark warehouse, and the sweep that removes a dead process's.

A load writes its batch file under the table's hidden `.lakebox-staging/` folder and
renames it into the table when its transaction commits (see `spark`). A process killed
before the rename (SIGKILL, power loss) cannot delete what it staged, so every staged
file is named by its owner, `<owner>-<random>.parquet`, and each owner holds an flock on
`<warehouse dir>/.lakebox-staging/<owner>.lock` while it lives. The OS releases that lock
however the process ends; a writer opening the warehouse (`sweep`) deletes the staged
files whose owner's lock it can take, and those stale locks. Files of a live process
(another pipeline loading into the same warehouse) are left alone.

The lock file appears under its name only once it is locked (created under a temporary
name, locked, then renamed), so the sweep never mistakes a starting owner for a dead one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from lakebox.errors import WarehouseError

STAGING = ".lakebox-staging"  # Spark skips names starting with '.' or '_' when it lists a table
LOCK_SUFFIX = ".lock"


class StagingArea:
    """This process's staged files in one warehouse dir; `close()` releases its owner lock."""

    def __init__(self, warehouse_dir: Path) -> None:
        self.dir = warehouse_dir
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock_fd: int | None = None

    def new_file(self, table_dir: Path) -> Path:
        """A fresh staged path in `table_dir`'s staging folder, owned by this process."""
        self._hold_lock()
        folder = table_dir / STAGING
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{self.owner}-{uuid.uuid4().hex}.parquet"

    def _hold_lock(self) -> None:
        if self._lock_fd is not None:
            return
        import fcntl

        owners = self.dir / STAGING
        owners.mkdir(parents=True, exist_ok=True)
        temporary = owners / f".{self.owner}{LOCK_SUFFIX}.tmp"
        error: OSError | None = None
        for _ in range(3):  # a sweep may delete the half-made file before it is locked: make it again
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.replace(temporary, owners / f"{self.owner}{LOCK_SUFFIX}")
            except OSError as exc:
                os.close(fd)
                error = exc
                continue
            self._lock_fd = fd
            return
        raise WarehouseError(f"could not take this process's staging lock in {owners}: {error}")

    def close(self) -> None:
        """Release the owner lock (its staged files are gone by now: published or discarded)."""
        if self._lock_fd is None:
            return
        (self.dir / STAGING / f"{self.owner}{LOCK_SUFFIX}").unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def sweep(self) -> list[Path]:
        """Delete staged files whose owner is no longer alive, and its lock; the paths removed."""
        owners = self.dir / STAGING
        if not owners.is_dir():
            return self._remove_staged(alive=set())
        alive = {self.owner} if self._lock_fd is not None else set()
        for lock in sorted(owners.iterdir()):
            name = lock.name.removeprefix(".").removesuffix(".tmp")
            if not name.endswith(LOCK_SUFFIX) or name == f"{self.owner}{LOCK_SUFFIX}":
                continue
            if _held_by_another(lock):
                alive.add(name.removesuffix(LOCK_SUFFIX))
        return self._remove_staged(alive)

    def _remove_staged(self, alive: set[str]) -> list[Path]:
        removed = []
        for staged in self.dir.glob(f"*.db/*/{STAGING}/*"):
            if staged.name.rsplit("-", 1)[0] not in alive:
                staged.unlink(missing_ok=True)
                removed.append(staged)
        return removed


def _held_by_another(lock: Path) -> bool:
    """True when a live process holds `lock`; otherwise the stale file is deleted."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return True
    lock.unlink(missing_ok=True)  # still locked by us: its owner is gone
    os.close(fd)
    return False
