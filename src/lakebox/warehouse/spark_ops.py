"""The ops.* audit and the batch ledger for a Spark warehouse, in a small transactional store.

Spark has no transactions, so the tables that must change atomically with a load (the
ledger's 'loaded' mark, quality results, source state) live beside it: a SQLite file
(`$LAKEBOX_HOME/ops.sqlite`, the default) or a PostgreSQL database (`LAKEBOX_OPS_URL`).
The SQLite file is attached under the name `ops`, so the same `ops.<table>` statements
(with `?` placeholders) run unchanged. It holds a handful of rows per run or batch.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakebox.errors import WarehouseError
from lakebox.warehouse.base import ScratchDuckDB, Warehouse

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.settings import Settings

OPS_URL_ENV = "LAKEBOX_OPS_URL"
BUSY_TIMEOUT_S = 30.0

# Read declared `timestamp` and `boolean` columns back as Python values (SQLite stores
# text and integers). Converters apply only to connections opened with detect_types.
sqlite3.register_converter("timestamp", lambda b: dt.datetime.fromisoformat(b.decode()))
sqlite3.register_converter("boolean", lambda b: b not in (b"0", b""))


def open_ops_store(settings: Settings) -> Warehouse:
    """The ops store a Spark warehouse keeps its audit in: LAKEBOX_OPS_URL or SQLite."""
    url = settings.env.get(OPS_URL_ENV, "")
    if url.startswith(("postgresql://", "postgres://")):
        from lakebox.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url, env=settings.env)
    if url and not url.startswith("sqlite:///"):
        raise WarehouseError(f"{OPS_URL_ENV} must be postgresql://... or sqlite:///path (got a {url.split(':', 1)[0]} URL)")
    return SqliteOpsStore(url.removeprefix("sqlite://") if url else str(settings.home / "ops.sqlite"))


def _value(value: Any) -> Any:
    """A parameter as SQLite stores it; timestamps as ISO text, so they sort as time."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class SqliteOpsStore(ScratchDuckDB, Warehouse):
    kind = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._con: sqlite3.Connection | None = None

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(":memory:", timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                  detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False)
            con.execute("attach database ? as ops", [self.path])
            con.execute("pragma ops.journal_mode = wal")  # readers (status, a dashboard) never block a load
            con.execute(f"pragma busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._con = con
        return self._con

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._run(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._run(sql, params).fetchall()]

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        import pyarrow as pa

        cur = self._run(sql, params)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description or []]
        return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})

    def _run(self, sql: str, params: Sequence[Any] | None) -> sqlite3.Cursor:
        try:
            return self.con.execute(sql, [_value(p) for p in params or []])
        except sqlite3.Error as exc:
            statement = " ".join(sql.split())[:160]
            raise WarehouseError(f"ops store {self.describe()}: {exc} (in: {statement})") from exc

    @contextmanager
    def _outer_transaction(self) -> Iterator[None]:
        self.con.execute("begin immediate")  # take the write lock now, not at the first write
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def ensure_schemas(self) -> None:
        from lakebox.warehouse.ops import DDL

        for ddl in DDL:
            self.execute(ddl)

    def table_exists(self, schema: str, table: str) -> bool:
        rows = self.query("select count(*) from ops.sqlite_master where type = 'table' and name = ?", [table])
        return schema == "ops" and bool(rows[0][0])

    def load_from_scratch(self, select_sql: str, target: str, columns: Sequence[str]) -> int:
        """Append a few audit rows (never data rows) from the scratch DuckDB."""
        rows = self.scratch().sql(select_sql).fetchall()
        marks = ", ".join("?" for _ in columns)
        try:
            self.con.executemany(f"insert into {target} ({', '.join(columns)}) values ({marks})",
                                 [[_value(v) for v in row] for row in rows])
        except sqlite3.Error as exc:
            raise WarehouseError(f"ops store {self.describe()}: {exc} (appending to {target})") from exc
        return len(rows)

    def release(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        self.release()
        self.close_scratch()

    def describe(self) -> str:
        return f"sqlite:{self.path}"
