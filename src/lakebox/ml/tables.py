"""The ml.* tables the lifecycle writes, and the one bulk path into them.

Rows go in as Arrow tables through the warehouse's scratch DuckDB (`load_from_scratch`):
INSERT ... SELECT on DuckDB, COPY on PostgreSQL; never a row at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakebox.warehouse.ddl import create_if_missing

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.warehouse import Warehouse

MODEL_DECISIONS = "ml.model_decisions"
DRIFT_REPORT = "ml.drift_report"
DRIFT_REFERENCE = "ml.drift_reference"
MODEL_STORES = "ml.model_stores"
MODEL_PERFORMANCE = "ml.model_performance"
MODEL_TRIGGERS = "ml.model_triggers"

DDL = {
    MODEL_DECISIONS: """create table if not exists ml.model_decisions (
        model_name varchar not null, version varchar not null, decision varchar not null,
        metric varchar not null, value double precision, champion_value double precision,
        reason varchar not null, decided_at timestamp not null, run_id varchar)""",
    # one row per generation of a model's history (ml/history.py); store_id null until bound
    MODEL_STORES: """create table if not exists ml.model_stores (
        model_name varchar not null, generation bigint not null, store_id varchar,
        tracking_uri varchar not null, started_at timestamp not null, reason varchar not null)""",
    DRIFT_REPORT: """create table if not exists ml.drift_report (
        model_name varchar not null, feature varchar not null, method varchar not null,
        statistic double precision, p_value double precision, threshold double precision,
        drifted boolean not null, window_start timestamp, window_end timestamp,
        computed_at timestamp not null)""",
    # long: one row per (scored row, drift feature); numbers in `number`, the rest in `value`
    DRIFT_REFERENCE: """create table if not exists ml.drift_reference (
        model_name varchar not null, model_version varchar not null, feature varchar not null,
        number double precision, value varchar, recorded_at timestamp not null)""",
    # live quality (ml/performance.py): past predictions scored against the labels known now,
    # per version and day scored; rebuilt whole each time, since labels of old days land late
    MODEL_PERFORMANCE: """create table if not exists ml.model_performance (
        model_name varchar not null, model_version varchar not null, day date not null,
        metric varchar not null, value double precision, labelled_rows bigint not null,
        computed_at timestamp not null)""",
    # retraining triggers that fired (ml/triggers.py): (kind, evidence) fires once per model
    MODEL_TRIGGERS: """create table if not exists ml.model_triggers (
        model_name varchar not null, kind varchar not null, evidence varchar not null,
        champion_version varchar, reason varchar not null, fired_at timestamp not null,
        version varchar, decision varchar, run_id varchar)""",
}


# columns added since a table was first declared: (table, column, type). A writer that fills
# them adds them (`ensure_added`): tables of older homes, and readers that insert the first
# columns by position, keep working.
ADDED = ((MODEL_DECISIONS, "from_version", "varchar"), (MODEL_DECISIONS, "decided_by", "varchar"))


def ensure(warehouse: Warehouse, table: str) -> None:
    create_if_missing(warehouse, ["create schema if not exists ml", DDL[table]])


def ensure_added(warehouse: Warehouse, table: str) -> None:
    """`ensure`, then the ADDED columns of `table` where they are missing."""
    ensure(warehouse, table)
    added = [(c, t) for name, c, t in ADDED if name == table]
    if added:
        have = set(warehouse.query_arrow(f"select * from {table} limit 0").schema.names)  # Spark has no information_schema
        for column, kind in added:
            if column not in have:
                warehouse.execute(f"alter table {table} add column {column} {kind}")


def sql_type(arrow_type: pa.DataType) -> str:
    """A portable column type for an Arrow type (DuckDB and PostgreSQL)."""
    import pyarrow as pa

    checks = (
        (pa.types.is_boolean, "boolean"), (pa.types.is_integer, "bigint"),
        (pa.types.is_floating, "double precision"), (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_date, "date"), (pa.types.is_decimal, "double precision"),
    )
    for check, name in checks:
        if check(arrow_type):
            return name
    return "varchar"


def ensure_like(warehouse: Warehouse, table: str, schema: pa.Schema) -> None:
    """Create `table` with columns typed after `schema`, unless it exists."""
    ns, name = table.split(".", 1)
    if warehouse.table_exists(ns, name):
        return
    columns = ", ".join(f"{field.name} {sql_type(field.type)}" for field in schema)
    create_if_missing(warehouse, [f"create schema if not exists {ns}", f"create table if not exists {table} ({columns})"])


def append(warehouse: Warehouse, table: str, rows: pa.Table, columns: Sequence[str] | None = None) -> int:
    """Bulk-append an Arrow table in one transaction; returns the rows written."""
    if rows.num_rows == 0:
        return 0
    cols = list(columns or rows.column_names)
    view = f"ml_rows_{uuid.uuid4().hex[:12]}"
    scratch = warehouse.scratch()
    scratch.register(view, rows)
    try:
        with warehouse.transaction():
            return warehouse.load_from_scratch(f"select {', '.join(cols)} from {view}", table, cols)
    finally:
        scratch.unregister(view)
