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

    from lakebox.settings import Settings

SCHEMAS = ("raw", "staging", "analytics", "ml", "ops")

OPS_DDL = (
    """create table if not exists ops.pipeline_runs (
        run_id varchar primary key, pipeline varchar not null, status varchar not null,
        started_at timestamp not null, ended_at timestamp, duration_s double precision,
        rows_in bigint, rows_out bigint, error varchar)""",
    """create table if not exists ops.stage_runs (
        run_id varchar not null, pipeline varchar not null, stage varchar not null,
        status varchar not null, started_at timestamp not null, ended_at timestamp,
        duration_s double precision, rows_in bigint, rows_out bigint, error varchar)""",
    """create table if not exists ops.dq_results (
        run_id varchar, batch_id varchar not null, source varchar not null,
        check_name varchar not null, column_name varchar, passed boolean not null,
        failing_rows bigint not null, sample varchar, checked_at timestamp not null)""",
    """create table if not exists ops.batches (
        batch_id varchar primary key, source varchar not null, lake_path varchar not null,
        sha256 varchar not null, bytes bigint, rows bigint, status varchar not null,
        landed_at timestamp not null, loaded_at timestamp, run_id varchar, error varchar,
        meta varchar)""",
    """create table if not exists ops.source_state (
        source varchar not null, state_key varchar not null, value varchar,
        updated_at timestamp not null, primary key (source, state_key))""",
)


class Warehouse(ABC):
    kind: str

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
        for schema in SCHEMAS:
            self.execute(f"create schema if not exists {schema}")
        for ddl in OPS_DDL:
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


def open_warehouse(settings: Settings) -> Warehouse:
    """The configured warehouse, with its schemas and ops tables in place."""
    if settings.warehouse_kind == "postgres":
        from lakebox.warehouse.postgres import PostgresWarehouse

        warehouse: Warehouse = PostgresWarehouse(settings.warehouse, env=settings.env)
    elif settings.warehouse_kind == "spark":
        from lakebox.warehouse.spark import SparkWarehouse

        warehouse = SparkWarehouse(settings)
    else:
        from lakebox.warehouse.duckdb import DuckDBWarehouse

        warehouse = DuckDBWarehouse(settings.warehouse)
    warehouse.ensure_schemas()
    return warehouse
