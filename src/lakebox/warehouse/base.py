"""What every warehouse can do: run SQL, bulk-load a checked batch in one transaction.

SQL passed to `execute`/`query` uses `?` placeholders on every engine. Batches are parsed
and checked in DuckDB (the warehouse itself when it is DuckDB, an in-memory one when it
is not) and moved to the target with the engine's bulk path: INSERT ... SELECT on
DuckDB, COPY on PostgreSQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

SCHEMAS = ("raw", "staging", "analytics", "ml", "ops")
SCRATCH_SETTINGS = {"memory_limit": "1GB", "preserve_insertion_order": "false"}

class Warehouse(ABC):
    kind: str
    # What the warehouse can do, asked by code outside warehouse/ instead of its kind:
    has_information_schema: bool = True  # Spark has none: columns are read off `select * ... limit 0`
    can_delete_rows: bool = True  # Spark's parquet tables take no DELETE

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table: ...

    _depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; a block opened inside another joins it (a stage's ledger write
        inside a batch load commits with the batch, or not at all)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self._outer_transaction():
                yield
        finally:
            self._depth = 0

    @abstractmethod
    def _outer_transaction(self) -> AbstractContextManager[None]:
        """Begin, then commit on success or roll back on any exception."""

    @abstractmethod
    def scratch(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection where batches are parsed and checked."""

    @abstractmethod
    def load_from_scratch(self, select_sql: str, target: str, columns: Sequence[str]) -> int:
        """Bulk-append `select_sql` (run on the scratch connection) into `target`.

        Call inside `transaction()`; returns the rows written.
        """

    @abstractmethod
    def release(self) -> None:
        """Let go of connections so another client (dbt, a dashboard) can open the warehouse."""

    @abstractmethod
    def describe(self) -> str:
        """Where the warehouse is, with secrets redacted."""

    def close(self) -> None:
        self.release()

    def ensure_schemas(self) -> None:
        from lakebox.warehouse.ops import DDL

        for schema in SCHEMAS:
            self.execute(f"create schema if not exists {schema}")
        for ddl in DDL:
            self.execute(ddl)

    def table_exists(self, schema: str, table: str) -> bool:
        rows = self.query(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        )
        return bool(rows[0][0])

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScratchDuckDB:
    """The in-memory DuckDB beside a warehouse whose engine is not DuckDB (PostgreSQL, Spark,
    Spark's ops store), where batches are parsed and checked: opened on first use, closed
    with the warehouse (`close_scratch`)."""

    _scratch: duckdb.DuckDBPyConnection | None = None

    def scratch(self) -> duckdb.DuckDBPyConnection:
        """The scratch DuckDB, ready for new work: DuckDB refuses anything (even `register`)
        while an earlier result is unread, so a half-read one is finished."""
        if self._scratch is None:
            import duckdb

            self._scratch = duckdb.connect(":memory:", config=dict(SCRATCH_SETTINGS))
        self._scratch.complete()
        return self._scratch

    def close_scratch(self) -> None:
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None
