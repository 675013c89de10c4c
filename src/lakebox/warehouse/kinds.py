"""What each kind of warehouse is, told by the warehouse itself (as dlt's destinations do).

A `WarehouseKind` says, from the settings alone, without a connection and without importing
its driver (psycopg, pyspark, dbt's adapters are imported inside the methods that need them):
whether the warehouse exists yet, how many runs it takes at once, its dbt profile and what
runs around a dbt command, and how to open it. Code outside `lakebox.warehouse` asks its
`kind_of(settings)` and never which kind it has (tests/warehouse/test_kinds.py holds it to that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse.base import Warehouse

DBT_PASSWORD_ENV = "LAKEBOX_DBT_PASSWORD"  # dbt's profile reads the password from here, never from the file


class WarehouseKind:
    """One kind of warehouse; the defaults suit a server that is always there."""

    name: ClassVar[str]
    label: ClassVar[str]  # as a person names it
    has_roles: ClassVar[bool] = False  # role-based access (`lakebox grants`, warehouse/grants.py)
    max_concurrent_runs: ClassVar[int] = 4  # Dagster's queue: runs that may write at once

    def exists(self, warehouse: str) -> bool:
        """Whether a run has created the warehouse (the setting's value) yet: a reader must not create it."""
        return True

    def location(self, warehouse: str) -> str:
        """The warehouse setting as this kind opens it (a reader may be given it back)."""
        return warehouse

    def namespace(self, warehouse: str) -> str:
        """The warehouse as OpenLineage names it: scheme, host, port and database, never
        the user or the password."""
        from urllib.parse import urlsplit

        parts = urlsplit(warehouse)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def open(self, settings: Settings, read_only: bool) -> Warehouse:
        raise NotImplementedError

    def open_for_metrics(self, settings: Settings) -> Warehouse | None:
        """A connection that reads the ops tables for metrics and creates nothing, or None
        when there is nothing to read."""
        return None

    def dbt_profile(self, settings: Settings) -> str:
        """The text of dbt's profiles.yml for this warehouse (no secret in it)."""
        raise NotImplementedError

    def dbt_password(self, settings: Settings) -> str:
        """What dbt finds in DBT_PASSWORD_ENV while it runs."""
        return ""

    @contextmanager
    def around_dbt(self, settings: Settings) -> Iterator[None]:
        """What must hold while one dbt command runs in this process, undone after it."""
        yield

    def reader_error(self, exc: Exception, where: str) -> Exception:
        """A failed read on the dashboard, said for a person; `exc` itself when it says enough."""
        if "is busy" in str(exc):
            from lakebox.errors import WarehouseError

            return WarehouseError(f"{exc}. Press 'Refresh data' when the run has finished.")
        return exc


class DuckDBKind(WarehouseKind):
    """One embedded file: one writer at a time, created by the first run."""

    name = "duckdb"
    label = "DuckDB"
    max_concurrent_runs = 1

    def location(self, warehouse: str) -> str:
        return warehouse.removeprefix("duckdb://").removeprefix("file://")

    def file(self, settings: Settings) -> Path:
        """The DuckDB file; dbt opens it by bare name from its folder (see transform/dbt.py)."""
        return Path(self.location(settings.warehouse))

    def exists(self, warehouse: str) -> bool:
        return Path(self.location(warehouse)).is_file()

    def namespace(self, warehouse: str) -> str:
        return "duckdb://" + str(Path(self.location(warehouse)).resolve())

    def open(self, settings: Settings, read_only: bool) -> Warehouse:
        from lakebox.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(settings.warehouse, read_only=read_only)

    def open_for_metrics(self, settings: Settings) -> Warehouse | None:
        if not self.exists(settings.warehouse):
            return None
        from lakebox.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(str(self.file(settings)))

    def dbt_profile(self, settings: Settings) -> str:
        """dbt's own connection waits out a reader holding the file for a moment (`lakebox
        serve`'s sensors, the dashboard), as lakebox's does (LOCK_WAIT_S): dbt-duckdb tries
        again after 1, 2 and 4 s, where a first refusal would fail the run's transform stage."""
        from lakebox.warehouse.duckdb import MEMORY_LIMIT

        return (
            "lakebox:\n  target: lakebox\n  outputs:\n    lakebox:\n      type: duckdb\n"
            f"      path: '{self.file(settings).name}'\n      schema: main\n      threads: 1\n"
            f"      settings:\n        memory_limit: '{MEMORY_LIMIT}'\n        preserve_insertion_order: false\n"
            "      retries:\n        connect_attempts: 4\n"
        )

    @contextmanager
    def around_dbt(self, settings: Settings) -> Iterator[None]:
        """dbt runs in the file's folder (its profile names the file bare, so a parse does not
        depend on the home), and lets go of the file after (lakebox reopens it)."""
        folder = self.file(settings).parent
        folder.mkdir(parents=True, exist_ok=True)
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(cwd)
            _close_dbt_duckdb()


def _close_dbt_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB handle open after invoke; close it so lakebox can reopen
    the file (DuckDB refuses a second in-process handle with a different configuration)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


class PostgresKind(WarehouseKind):
    """A PostgreSQL server by URL; its password reaches dbt through the environment only."""

    name = "postgres"
    label = "PostgreSQL"
    has_roles = True

    def open(self, settings: Settings, read_only: bool) -> Warehouse:
        from lakebox.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(settings.warehouse, env=settings.env, read_only=read_only)

    def open_for_metrics(self, settings: Settings) -> Warehouse | None:
        from lakebox.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(settings.warehouse, env=settings.env)

    def dbt_profile(self, settings: Settings) -> str:
        url = urlsplit(settings.warehouse)
        return (
            "lakebox:\n  target: lakebox\n  outputs:\n    lakebox:\n      type: postgres\n"
            f"      host: {url.hostname or '127.0.0.1'}\n      port: {url.port or 5432}\n"
            f"      user: {unquote(url.username or 'postgres')}\n"
            f"      password: \"{{{{ env_var('{DBT_PASSWORD_ENV}', '') }}}}\"\n"
            f"      dbname: {unquote(url.path.lstrip('/') or 'postgres')}\n"
            "      schema: public\n      threads: 2\n      connect_timeout: 5\n"
        )

    def dbt_password(self, settings: Settings) -> str:
        return unquote(urlsplit(settings.warehouse).password or "") or settings.env.get("PGPASSWORD", "")

    def reader_error(self, exc: Exception, where: str) -> Exception:
        from lakebox.errors import WarehouseError

        return WarehouseError(f"cannot read the PostgreSQL warehouse {where}: {exc}")


class SparkKind(WarehouseKind):
    """A Spark cluster (or local Spark) with lakebox's own SparkSession in this process."""

    name = "spark"
    label = "Spark"

    def open(self, settings: Settings, read_only: bool) -> Warehouse:
        from lakebox.warehouse.spark import SparkWarehouse

        return SparkWarehouse(settings)

    def dbt_profile(self, settings: Settings) -> str:
        # dbt-spark on lakebox's own SparkSession (see warehouse/spark.py). Two threads: each
        # model and test is a Spark job whose driver-side planning and dbt bookkeeping leave
        # the executors idle, so two nodes at a time (a model's tests, independent models)
        # keep them busier: warm builds of orders at 1M, alternated in one process on a
        # 2-core cluster, took 18.5 and 20.6 s with one thread, 13.1 and 18.9 s with two.
        return ("lakebox:\n  target: lakebox\n  outputs:\n    lakebox:\n      type: spark\n"
                "      method: session\n      host: NA\n      schema: default\n      threads: 2\n")

    @contextmanager
    def around_dbt(self, settings: Settings) -> Iterator[None]:
        """The session starts with lakebox's settings before dbt-spark asks for one."""
        from lakebox.warehouse.spark import spark_session

        spark_session(settings)
        yield


KINDS: dict[str, WarehouseKind] = {kind.name: kind for kind in (DuckDBKind(), PostgresKind(), SparkKind())}


def kind_of(settings: Settings) -> WarehouseKind:
    """The kind of the configured warehouse, from its URL's scheme (settings refuse others)."""
    return KINDS[settings.warehouse_kind]


def kind_named(name: str) -> WarehouseKind:
    """The kind a `WarehouseKind.name` names (e.g. one kept in a hashable reference)."""
    return KINDS[name]
