"""The scale-out warehouse: PostgreSQL through psycopg 3, bulk loads through COPY.

Batches are parsed and checked in an in-memory DuckDB (`scratch()`), then streamed into
PostgreSQL with binary COPY (see `postgres_copy`). Statements outside `transaction()`
commit at once, so audit rows persist even when a later stage fails; a transaction
nests by joining the outer one, as on DuckDB.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import psycopg

from lakebox.core_settings import PG_CONNECT_TIMEOUT
from lakebox.errors import WarehouseError
from lakebox.settings import redact
from lakebox.warehouse.base import SCHEMAS, ScratchDuckDB, Warehouse

if TYPE_CHECKING:
    import pyarrow as pa

COPY_BATCH_ROWS = 65_536

# `?` outside quoted literals and identifiers becomes %s; every % is doubled for psycopg.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")


def translate_placeholders(sql: str) -> str:
    """DuckDB-style `?` placeholders as psycopg's `%s`."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token.replace("%", "%%")

    return _PLACEHOLDER.sub(swap, sql)


class PostgresWarehouse(ScratchDuckDB, Warehouse):
    kind = "postgres"

    def __init__(self, url: str, env: Mapping[str, str], read_only: bool = False) -> None:
        self.url = url
        self.env = env
        self.read_only = read_only
        self._con: psycopg.Connection[Any] | None = None
        self._depth = 0
        self._table_types: dict[str, dict[str, str]] = {}  # target -> column -> type, for COPY

    # ---------------------------------------------------------------- connection
    @property
    def con(self) -> psycopg.Connection[Any]:
        if self._con is None or self._con.closed:
            self._con = self._connect()
        return self._con

    def _connect(self) -> psycopg.Connection[Any]:
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": PG_CONNECT_TIMEOUT.read(self.env),
            "application_name": "lakebox",
            "options": "-c TimeZone=UTC" + (" -c default_transaction_read_only=on" if self.read_only else ""),
        }
        if not urlsplit(self.url).password and self.env.get("PGPASSWORD"):
            kwargs["password"] = self.env["PGPASSWORD"]
        try:
            return psycopg.connect(self.url, **kwargs)
        except psycopg.Error as exc:
            raise WarehouseError(self._connect_message(exc)) from exc

    def _connect_message(self, exc: psycopg.Error) -> str:
        where = self.describe()
        text = str(exc)
        lower = text.lower()
        parts = urlsplit(self.url)
        user = unquote(parts.username or "") or self.env.get("PGUSER", "") or "(default user)"
        database = unquote(parts.path.lstrip("/")) or "(default database)"
        state = getattr(exc, "sqlstate", None)
        if state == "3D000" or ("database" in lower and "does not exist" in lower):
            return (f"PostgreSQL at {where}: database {database!r} does not exist; create it "
                    f"(createdb {database}) or fix LAKEBOX_WAREHOUSE")
        if state == "28P01" or "password authentication failed" in lower:
            return (f"PostgreSQL at {where} refused the login of user {user!r}: wrong password; "
                    "check the password in LAKEBOX_WAREHOUSE or PGPASSWORD")
        if state == "28000" or ("role" in lower and "does not exist" in lower) or "no pg_hba.conf entry" in lower:
            reason = _first_line(text.split("FATAL:", 1)[-1]).strip()
            return (f"PostgreSQL at {where} refused the login of user {user!r}: {reason}; "
                    "check the user and password in LAKEBOX_WAREHOUSE (or PGPASSWORD)")
        if "connection refused" in lower:
            return (f"cannot connect to PostgreSQL at {where}: connection refused; "
                    "is the server running? check LAKEBOX_WAREHOUSE")
        if "timeout" in lower or "timed out" in lower:
            return (f"cannot connect to PostgreSQL at {where}: no answer within the connect timeout; "
                    "is the host reachable? check LAKEBOX_WAREHOUSE")
        return f"cannot connect to PostgreSQL at {where}: {_last_reason(text)}; check LAKEBOX_WAREHOUSE"

    def _error(self, exc: psycopg.Error, sql: str) -> WarehouseError:
        if isinstance(exc, psycopg.OperationalError) and (self._con is None or self._con.closed):
            return WarehouseError(f"lost the connection to PostgreSQL at {self.describe()}: {_first_line(str(exc))}")
        statement = " ".join(sql.split())[:160]
        return WarehouseError(f"PostgreSQL at {self.describe()}: {_first_line(str(exc))} (in: {statement})")

    # ---------------------------------------------------------------- SQL
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._run(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self._run(sql, params)
        try:
            return cur.fetchall()
        except psycopg.Error as exc:
            raise self._error(exc, sql) from exc

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        import pyarrow as pa

        cur = self._run(sql, params)
        try:
            rows = cur.fetchall()
        except psycopg.Error as exc:
            raise self._error(exc, sql) from exc
        description = cur.description or []
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in description]
        arrays = [_arrow_array(values, col) for values, col in zip(columns, description, strict=True)]
        return pa.Table.from_arrays(arrays, names=[col.name for col in description])

    def _run(self, sql: str, params: Sequence[Any] | None) -> psycopg.Cursor[Any]:
        try:
            if params:
                return self.con.execute(translate_placeholders(sql), list(params))
            return self.con.execute(sql)
        except psycopg.Error as exc:
            raise self._error(exc, sql) from exc

    @contextmanager
    def _outer_transaction(self) -> Iterator[None]:
        try:
            with self.con.transaction():
                yield
        except psycopg.Error as exc:
            raise self._error(exc, "commit") from exc

    def ensure_schemas(self) -> None:
        """Create only what is missing, so a role without CREATE can still open the warehouse,
        under the DDL lock, so N processes opening a new database at once all succeed."""
        from lakebox.warehouse.ddl import create_if_missing
        from lakebox.warehouse.ops import DDL

        present = {row[0] for row in self.query(
            "select nspname from pg_namespace where nspname = any(?)", [list(SCHEMAS)])}
        tables = {row[0] for row in self.query(
            "select table_name from information_schema.tables where table_schema = 'ops'")}
        create_if_missing(self, [f"create schema if not exists {schema}" for schema in SCHEMAS if schema not in present]
                          + [ddl for ddl in DDL if ddl.split("ops.", 1)[1].split(None, 1)[0] not in tables])

    # ---------------------------------------------------------------- bulk loads
    def load_from_scratch(self, select_sql: str, target: str, columns: Sequence[str]) -> int:
        """Stream `select_sql` from the scratch DuckDB into `target` with one COPY.

        A producer thread reads and encodes Arrow batches while this thread feeds COPY
        and the server parses, so the three overlap on two cores.
        """
        from psycopg.copy import QueuedLibpqWriter

        from lakebox.warehouse.postgres_copy import BINARY_HEADER, BINARY_TRAILER, binary_encoders, encode_binary, encode_csv

        pg_types = self._column_types(target, columns)
        try:
            reader = self.scratch().sql(select_sql).to_arrow_reader(COPY_BATCH_ROWS)
        except Exception as exc:  # duckdb.Error, without importing duckdb at module load
            raise WarehouseError(f"could not read the batch to load into {target}: {_first_line(str(exc))}") from exc
        encoders = binary_encoders(reader.schema.types, pg_types)
        statement = f"copy {target} ({', '.join(columns)}) from stdin (format {'binary' if encoders else 'csv'})"
        encode = (lambda batch: encode_binary(batch, encoders)) if encoders else encode_csv
        chunks: queue.Queue[Any] = queue.Queue(maxsize=4)
        stop = threading.Event()
        producer = threading.Thread(target=_produce, args=(reader, encode, chunks, stop), daemon=True)
        rows = 0
        producer.start()
        try:
            cur = self.con.cursor()
            with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
                if encoders:
                    copy.write(BINARY_HEADER)
                while (item := chunks.get()) is not None:
                    if isinstance(item, BaseException):
                        raise WarehouseError(
                            f"could not read the batch to load into {target}: {_first_line(str(item))}") from item
                    rows += item[0]
                    copy.write(item[1])
                if encoders:
                    copy.write(BINARY_TRAILER)
        except psycopg.Error as exc:
            self._table_types.pop(target, None)  # the table may have changed under us
            raise self._error(exc, statement) from exc
        finally:
            stop.set()
            while producer.is_alive():  # free a producer blocked on a full queue
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.1)
        return rows

    def _column_types(self, target: str, columns: Sequence[str]) -> list[str]:
        """The target's column types (which binary encoding each column needs), looked up
        once per table: a pipeline loads many batches into one table."""
        found = self._table_types.get(target)
        if found is None or any(c not in found for c in columns):
            found = dict(self.query(
                "select attname, format_type(atttypid, null) from pg_attribute "
                "where attrelid = to_regclass(?) and attnum > 0 and not attisdropped",
                [target],
            ))
            self._table_types[target] = found
        if not found:
            raise WarehouseError(f"PostgreSQL at {self.describe()}: table {target} does not exist")
        missing = [c for c in columns if c not in found]
        if missing:
            raise WarehouseError(f"PostgreSQL at {self.describe()}: table {target} has no column(s) {missing}")
        return [found[c] for c in columns]

    # ---------------------------------------------------------------- lifecycle
    def release(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        self.release()
        self.close_scratch()

    def describe(self) -> str:
        return redact(self.url, self.env)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _last_reason(text: str) -> str:
    """libpq's 'connection to server at ... failed: <reason>' reduced to the reason."""
    line = _first_line(text)
    return line.rsplit("failed:", 1)[-1].strip() or line


def _produce(reader: Any, encode: Any, chunks: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for batch in reader:
            if stop.is_set():
                return
            chunks.put((batch.num_rows, encode(batch)))
    except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it as a WarehouseError
        chunks.put(exc)
        return
    chunks.put(None)


def _arrow_array(values: Sequence[Any], column: Any) -> Any:
    import pyarrow as pa

    oid = column.type_code
    if oid == 1700:
        if column.precision is not None and column.scale is not None:
            return pa.array(values, type=pa.decimal128(column.precision, column.scale))
        return pa.array(values)
    arrow_type = {
        16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
        25: pa.string(), 1042: pa.string(), 1043: pa.string(), 1082: pa.date32(), 1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
    }.get(oid)
    return pa.array(values, type=arrow_type)
