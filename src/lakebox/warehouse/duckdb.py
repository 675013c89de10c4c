"""The embedded default: one DuckDB file, opened lazily and released for dbt."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb as _duckdb

from lakebox.errors import WarehouseError
from lakebox.warehouse.base import Warehouse

# Keep memory bounded on big loads (the bench holds a 10M-row run to 2 GB RSS); DuckDB
# spills to disk past the limit. dbt's connection uses the same settings. A batch commits
# its WAL; checkpointing only every 256 MB of WAL (not 16) spares a rewrite per batch.
MEMORY_LIMIT = "1500MB"
CONNECTION_SETTINGS = {"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": "false", "checkpoint_threshold": "256MB"}
LOCK_WAIT_S = 10.0


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"

    def __init__(self, path: str, read_only: bool = False) -> None:
        self.path = path.removeprefix("duckdb://").removeprefix("file://")
        self.read_only = read_only
        self._con: _duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> _duckdb.DuckDBPyConnection:
        if self._con is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._con = self._connect()
        return self._con

    def _connect(self) -> _duckdb.DuckDBPyConnection:
        """Open the file; a reader holding it for a moment (the dashboard) is waited out,
        within LOCK_WAIT_S, rather than failing the run. A reader does not wait for a run."""
        if self.read_only:
            return self._connect_reader()
        deadline, pause = time.monotonic() + LOCK_WAIT_S, 0.05
        while True:
            try:
                return _duckdb.connect(self.path, config=dict(CONNECTION_SETTINGS))
            except _duckdb.Error as exc:
                if "lock" not in str(exc).lower() or time.monotonic() + pause > deadline:
                    raise WarehouseError(
                        f"cannot open the DuckDB warehouse {self.path}: {exc}; is another "
                        "lakebox process (or a dashboard) writing to it?"
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def _connect_reader(self) -> _duckdb.DuckDBPyConnection:
        try:
            return _duckdb.connect(self.path, read_only=True)
        except _duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise WarehouseError(
                    f"the DuckDB warehouse {self.path} is busy: a pipeline run (or another writer) holds its "
                    f"lock, and DuckDB lets one process write or several read; try again when the run has "
                    f"finished ({exc})"
                ) from exc
            raise WarehouseError(f"cannot read the DuckDB warehouse {self.path}: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params or [])

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql, params or []).fetchall()
        finally:
            self._release_reader()

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        try:
            return self.con.sql(sql, params=list(params or [])).to_arrow_table()
        finally:
            self._release_reader()

    def _release_reader(self) -> None:
        """A reader lets go of the file after each query, so it never blocks the next run."""
        if self.read_only:
            self.release()

    @contextmanager
    def _outer_transaction(self) -> Iterator[None]:
        self.con.execute("begin transaction")
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def scratch(self) -> _duckdb.DuckDBPyConnection:
        return self.con

    def load_from_scratch(self, select_sql: str, target: str, columns: Sequence[str]) -> int:
        cols = ", ".join(columns)
        row = self.con.execute(f"insert into {target} ({cols}) {select_sql}").fetchone()
        return int(row[0]) if row else 0

    def release(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def describe(self) -> str:
        return f"duckdb:{self.path}"
