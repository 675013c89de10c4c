"""Apache Spark as the warehouse: `LAKEBOX_WAREHOUSE=spark://host:7077` (or `spark+local://`).

Tables are Parquet tables in Spark's own layout, `<dir>/<schema>.db/<table>/`, under
LAKEBOX_SPARK_WAREHOUSE_DIR (default `$LAKEBOX_HOME/spark-warehouse`), registered in a
Hive catalog kept in `$LAKEBOX_HOME/spark-metastore` (Derby). Batches are parsed and
checked in an in-memory DuckDB, as on PostgreSQL, and each batch's rows are written with
pyarrow as ONE Parquet file named by its batch id in the table's folder; dbt (dbt-spark's
`session` method) then runs in this process on the same SparkSession.

Spark has no transactions, so `ops.*` lives in a small transactional store (see
`spark_ops`) and a load is made idempotent by naming: inside `transaction()` a batch's
file is staged under a hidden folder; on success it is renamed into the table (atomic on
one filesystem), then the ops store commits the ledger's 'loaded' mark. A crash between
the two leaves a published file whose batch is still pending: the next run loads the
batch again and the rename replaces that file with the same rows, never adds a copy. A
crash before the rename leaves a staged file that the next writer sweeps away
(`spark_staging`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lakebox.core_settings import SPARK_CONF
from lakebox.errors import WarehouseError
from lakebox.settings import redact
from lakebox.warehouse.base import SCHEMAS, ScratchDuckDB, Warehouse
from lakebox.warehouse.spark_ops import open_ops_store
from lakebox.warehouse.spark_staging import StagingArea

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.settings import Settings

WAREHOUSE_DIR_ENV = "LAKEBOX_SPARK_WAREHOUSE_DIR"
LOAD_BATCH_ROWS = 262_144

_OPS = re.compile(r"\bops\.\w", re.IGNORECASE)
_VARCHAR = re.compile(r"\bvarchar\b(?!\s*\()", re.IGNORECASE)
_DOUBLE_PRECISION = re.compile(r"\bdouble\s+precision\b", re.IGNORECASE)
_CREATE_TABLE = re.compile(r"^\s*create\s+table\b", re.IGNORECASE)
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"((?:[^\"]|\"\")*)\"")  # a string literal, or a "quoted identifier"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.=-]")


def master_url(warehouse: str) -> str:
    """Spark's master URL: spark://host:port as given; spark+local://[N] is local[N]."""
    if warehouse.startswith("spark+local://"):
        threads = warehouse.removeprefix("spark+local://").strip("/[]") or "*"
        return f"local[{threads}]"
    return warehouse


def warehouse_dir(settings: Settings) -> Path:
    """Where the tables live: a filesystem path that the driver and every worker share."""
    value = settings.env.get(WAREHOUSE_DIR_ENV) or str(settings.home / "spark-warehouse")
    if "://" in value and not value.startswith("file://"):
        raise WarehouseError(
            f"{WAREHOUSE_DIR_ENV}={redact(value)}: lakebox writes batch files directly, so the Spark "
            "warehouse dir must be a filesystem path the driver and every worker share (an object store "
            "needs the hadoop-aws jars, not installed here)")
    return Path(value.removeprefix("file://")).absolute()


def spark_conf(settings: Settings) -> dict[str, str]:
    """The session's settings: Parquet tables under the warehouse dir, a Hive catalog in
    Derby under the home, UTC, quiet; LAKEBOX_SPARK_CONF adds or overrides any of them."""
    home = settings.home.absolute()
    conf = {
        "spark.sql.warehouse.dir": str(warehouse_dir(settings)),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={home / 'spark-metastore'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    master = master_url(settings.warehouse)
    if master.startswith("local") or (urlsplit(master).hostname or "") in ("127.0.0.1", "localhost"):
        conf["spark.driver.host"] = "127.0.0.1"
    conf.update(SPARK_CONF.optional(settings.env) or {})
    return conf


_SESSION: dict[str, Any] = {}  # the process's one SparkSession and the settings it was built with


def spark_session(settings: Settings) -> Any:
    """The process's SparkSession for these settings (dbt-spark's `session` method finds
    the same one); started on first use, restarted only when the master or dirs change."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise WarehouseError("LAKEBOX_WAREHOUSE is a Spark URL but pyspark is not installed: "
                             "pip install 'lakebox[spark]' (and Java 17)") from exc
    key = f"{master_url(settings.warehouse)}\0{sorted(spark_conf(settings).items())}"
    if _SESSION.get("key") == key:
        return _SESSION["session"]
    if "session" in _SESSION:
        _SESSION.pop("session").stop()
    warehouse_dir(settings).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.master(master_url(settings.warehouse)).appName("lakebox")
    for name, value in spark_conf(settings).items():
        builder = builder.config(name, value)
    try:
        session = builder.enableHiveSupport().getOrCreate()
    except Exception as exc:  # py4j / Java start-up errors
        raise WarehouseError(f"could not start Spark for {redact(settings.warehouse)}: {_first_line(exc)}; "
                             "is the master running and Java 17 installed?") from exc
    session.sparkContext.setLogLevel("ERROR")
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)  # errors surface as WarehouseError
    for schema in SCHEMAS:  # the Hive catalog starts on first use: here, as part of the session's start-up
        if schema != "ops":
            session.sql(f"create database if not exists {schema}")
    _SESSION.update(key=key, session=session)
    return session


def to_spark_sql(sql: str) -> str:
    """lakebox's portable SQL in Spark's dialect: "quoted" identifiers in backticks (Spark
    reads double quotes as a string), `varchar` is `string`, `double precision` is
    `double`, and a created table is a Parquet table."""
    sql = _QUOTED.sub(lambda m: m.group(0) if m.group(1) is None else f"`{m.group(1)}`", sql)
    sql = _DOUBLE_PRECISION.sub("double", _VARCHAR.sub("string", sql))
    if _CREATE_TABLE.match(sql) and not re.search(r"\busing\b|\bas\s+select\b", sql, re.IGNORECASE):
        sql = sql.rstrip().rstrip(";") + " using parquet"
    return sql


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _param(value: Any) -> Any:
    """Naive timestamps are UTC (as everywhere in lakebox); PySpark would read them as local time."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class SparkWarehouse(ScratchDuckDB, Warehouse):
    kind = "spark"
    has_information_schema = False
    can_delete_rows = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.warehouse
        self.dir = warehouse_dir(settings)
        self.ops = open_ops_store(settings)
        self.staging = StagingArea(self.dir)
        self._staged: list[tuple[Path, Path, str]] = []  # (staged file, final file, table)
        self._stale: set[str] = set()  # tables given new files since Spark last listed them
        self._layouts: dict[str, tuple[Path, pa.Schema]] = {}
        self._depth = 0

    @property
    def spark(self) -> Any:
        """The SparkSession, with lakebox's databases in place; started on first use, so
        what reads only ops.* (`lakebox status`) never starts Spark."""
        return spark_session(self.settings)

    # ---------------------------------------------------------------- SQL
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if _OPS.search(sql):
            self.ops.execute(sql, params)
        else:
            self._sql(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        if _OPS.search(sql):
            return self.ops.query(sql, params)
        return [tuple(row) for row in self._collect(sql, params)]

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        if _OPS.search(sql):
            return self.ops.query_arrow(sql, params)
        frame = self._sql(sql, params)
        try:
            return frame.toArrow()
        except Exception as exc:
            raise self._error(exc, sql) from exc

    def _sql(self, sql: str, params: Sequence[Any] | None) -> Any:
        self._refresh()
        try:
            return self.spark.sql(to_spark_sql(sql), args=[_param(p) for p in params] if params else None)
        except WarehouseError:
            raise
        except Exception as exc:  # pyspark's AnalysisException, ParseException, Py4JJavaError
            raise self._error(exc, sql) from exc

    def _collect(self, sql: str, params: Sequence[Any] | None) -> list[Any]:
        frame = self._sql(sql, params)
        try:
            rows: list[Any] = frame.collect()
            return rows
        except Exception as exc:
            raise self._error(exc, sql) from exc

    def _error(self, exc: BaseException, sql: str) -> WarehouseError:
        statement = " ".join(sql.split())[:160]
        return WarehouseError(f"Spark at {self.describe()}: {_first_line(exc)} (in: {statement})")

    def ensure_schemas(self) -> None:
        """The ops store now; Spark's databases when Spark is first used (see `spark`). A
        writer also removes the batch files a crashed process left staged."""
        self.ops.ensure_schemas()
        removed = self.staging.sweep()
        if removed:
            from lakebox.log import get_logger

            get_logger().warning("removed staged files a crashed load left", files=len(removed),
                                 tables=sorted({p.parent.parent.name for p in removed}))

    def table_exists(self, schema: str, table: str) -> bool:
        if schema == "ops":
            return self.ops.table_exists(schema, table)
        return bool(self.spark.catalog.tableExists(f"{schema}.{table}"))

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def _outer_transaction(self) -> Iterator[None]:
        """The ops store's transaction; the block's staged batch files are published just
        before it commits (see the module doc), and thrown away if anything failed."""
        self._staged = []
        try:
            with self.ops.transaction():
                yield
                self._publish()
        finally:
            self._discard()

    def _publish(self) -> None:
        for staged, final, table in self._staged:
            os.replace(staged, final)
            self._stale.add(table)
        self._staged = []

    def _refresh(self) -> None:
        """Spark caches a table's file listing: a table that got new files is refreshed once
        before Spark next reads (not after each of a run's many batch commits)."""
        while self._stale:
            self.spark.catalog.refreshTable(self._stale.pop())

    def _discard(self) -> None:
        for staged, _, _ in self._staged:
            staged.unlink(missing_ok=True)
        self._staged = []

    # ---------------------------------------------------------------- bulk loads
    def load_from_scratch(self, select_sql: str, target: str, columns: Sequence[str]) -> int:
        """Write `select_sql`'s rows into `target` as one Parquet file per batch_id (named
        by it), staged until the transaction commits; ops.* rows go to the ops store."""
        if _OPS.search(target):
            ops_rows = self.scratch().sql(select_sql).to_arrow_table()
            ops_scratch = self.ops.scratch()
            ops_scratch.register("lakebox_ops_rows", ops_rows)
            try:
                return self.ops.load_from_scratch("select * from lakebox_ops_rows", target, columns)
            finally:
                ops_scratch.unregister("lakebox_ops_rows")
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        location, schema = self._layout(target)
        try:
            reader = self.scratch().sql(select_sql).to_arrow_reader(LOAD_BATCH_ROWS)
        except Exception as exc:  # duckdb.Error
            raise WarehouseError(f"could not read the batch to load into {target}: {_first_line(exc)}") from exc
        writers: dict[str | None, tuple[Any, Path]] = {}
        rows = 0
        try:
            for batch in reader:
                part = _conform(batch, list(columns), schema)
                rows += part.num_rows
                ids = pc.unique(part["batch_id"]).to_pylist() if "batch_id" in part.column_names else [None]
                for batch_id in ids:
                    piece = part if len(ids) == 1 else part.filter(pc.equal(part["batch_id"], batch_id))
                    if batch_id not in writers:
                        path = self.staging.new_file(location)
                        writers[batch_id] = (pq.ParquetWriter(path, schema, compression="zstd"), path)
                    writers[batch_id][0].write_table(piece)
            for writer, _ in writers.values():
                writer.close()
        except BaseException as exc:  # an interrupt too: nothing this load staged may stay behind
            for writer, path in writers.values():
                writer.close()
                path.unlink(missing_ok=True)
            if isinstance(exc, WarehouseError) or not isinstance(exc, Exception):
                raise
            raise WarehouseError(f"could not write the batch to load into {target}: {_first_line(exc)}") from exc
        for batch_id, (_, path) in writers.items():
            name = f"batch-{_SAFE_NAME.sub('_', batch_id)}.parquet" if batch_id else f"part-{uuid.uuid4().hex}.parquet"
            self._staged.append((path, location / name, target))
        if not self._depth:  # outside a transaction: publish at once
            self._publish()
        return rows

    def _layout(self, target: str) -> tuple[Path, pa.Schema]:
        """The table's folder and its columns as Arrow types, looked up once per table."""
        if target not in self._layouts:
            rows = self._collect(f"describe table extended {target}", None)
            location = next((r[1] for r in rows if r[0] == "Location"), None)
            if not location or not location.startswith("file:"):
                raise WarehouseError(
                    f"Spark table {target} is at {location!r}: lakebox writes batch files directly, so the "
                    f"warehouse dir ({WAREHOUSE_DIR_ENV}) must be a filesystem path the driver and every "
                    "worker share (S3 needs the hadoop-aws jars, not installed here)")
            path = Path(urlsplit(location).path)
            self._layouts[target] = (path, _arrow_schema(self.spark.table(target).schema))
        return self._layouts[target]

    # ---------------------------------------------------------------- lifecycle
    def release(self) -> None:
        """The SparkSession stays up for the process (dbt runs on it, so it first sees the
        tables' new files); the ops store lets go."""
        self._refresh()
        self.ops.release()

    def close(self) -> None:
        self._discard()
        if "session" in _SESSION:  # another warehouse object of this process may read next
            self._refresh()
        self.staging.close()
        self.ops.close()
        self.close_scratch()

    def describe(self) -> str:
        return f"{redact(self.url, self.settings.env)} (tables in {self.dir}, ops in {self.ops.describe()})"


def stop_spark() -> None:
    """Stop the process's SparkSession (tests and the bench; a CLI process just exits)."""
    if "session" in _SESSION:
        _SESSION.pop("session").stop()
        _SESSION.clear()


def _arrow_schema(struct: Any) -> pa.Schema:
    import pyarrow as pa
    from pyspark.sql import types as T

    def arrow_type(kind: Any) -> pa.DataType:
        if isinstance(kind, T.DecimalType):
            return pa.decimal128(kind.precision, kind.scale)
        simple = {T.StringType: pa.string(), T.VarcharType: pa.string(), T.CharType: pa.string(),
                  T.DoubleType: pa.float64(), T.FloatType: pa.float32(), T.LongType: pa.int64(),
                  T.IntegerType: pa.int32(), T.ShortType: pa.int16(), T.ByteType: pa.int8(),
                  T.BooleanType: pa.bool_(), T.DateType: pa.date32(),
                  T.TimestampType: pa.timestamp("us", tz="UTC"), T.TimestampNTZType: pa.timestamp("us")}
        for spark_type, found in simple.items():
            if isinstance(kind, spark_type):
                return found
        raise WarehouseError(f"Spark column type {kind.simpleString()} has no Arrow mapping in lakebox")

    return pa.schema([pa.field(f.name, arrow_type(f.dataType)) for f in struct.fields])


def _conform(batch: Any, columns: list[str], schema: pa.Schema) -> pa.Table:
    """A scratch batch named as the target's columns and cast to the table's types; a
    table column the batch lacks is null. Naive timestamps are UTC."""
    import pyarrow as pa

    table = pa.Table.from_batches([batch]).rename_columns(columns)
    arrays = []
    for field in schema:
        if field.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table[field.name]
        if pa.types.is_timestamp(field.type) and pa.types.is_timestamp(column.type) and column.type.tz is None:
            column = column.cast(pa.timestamp("us")).cast(field.type)
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
