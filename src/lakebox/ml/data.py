"""A model's rows: read from the warehouse, split by time, fingerprinted.

The newest labelled rows are the holdout, so a model is judged on commits (or years) it
could not have seen, as it will be used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.ml.spec import MLModelSpec
    from lakebox.warehouse import Warehouse


@dataclass
class Split:
    train: Any  # pandas DataFrames, sorted by time
    holdout: Any
    train_end: Any  # the newest time in train
    holdout_start: Any


def missing_tables(warehouse: Warehouse, spec: MLModelSpec) -> list[str]:
    return [t for t in spec.required_tables if not warehouse.table_exists(*t.split(".", 1))]


def read_rows(warehouse: Warehouse, spec: MLModelSpec, where: str = "") -> pa.Table:
    """The spec's rows, ordered by time then key (a stable order for splits and hashes)."""
    missing = missing_tables(warehouse, spec)
    if missing:
        raise ConfigError(f"model {spec.name}: table(s) {', '.join(missing)} missing in the warehouse; "
                          f"run `lakebox run {spec.pipeline}` first to build them")
    check_columns(warehouse, spec)
    order = ", ".join((spec.time_column, *spec.key_columns))
    table = warehouse.query_arrow(f"select * from ({spec.source_sql}) as src {where} order by {order}")
    wanted = (*spec.key_columns, spec.time_column, spec.label_column, *spec.features,
              *((spec.baseline_column,) if spec.baseline_column else ()))
    absent = [c for c in wanted if c not in table.column_names]
    if absent:
        raise ConfigError(f"model {spec.name}: its source query returns no column(s) {absent}; "
                          f"it returns {table.column_names}")
    return table


def check_columns(warehouse: Warehouse, spec: MLModelSpec) -> None:
    """A ConfigError naming the model, its `source_table` and that table's columns when a
    column the model reads is not one of them (nothing to check without a source_table)."""
    if spec.source_table is None:
        return
    have = warehouse.query_arrow(f"select * from {spec.source_table} limit 0").schema.names
    roles = [("key column", spec.key_columns), ("time column", (spec.time_column,)),
             ("feature", spec.features), ("target", (spec.label_column,)),
             ("baseline column", (spec.baseline_column,) if spec.baseline_column else ())]
    missing = [f"{role} {name!r}" for role, names in roles for name in dict.fromkeys(names) if name not in have]
    if missing:
        raise ConfigError(f"model {spec.name} (pipeline {spec.pipeline}): {', '.join(missing)} missing from "
                          f"{spec.source_table}, whose columns are: {', '.join(have)}; name one of those in the "
                          f"model, or add the column to {spec.source_table}'s SQL")


def labelled(table: pa.Table, spec: MLModelSpec) -> pa.Table:
    import pyarrow.compute as pc

    return table.filter(pc.is_valid(table[spec.label_column]))


def fingerprint(table: pa.Table) -> str:
    """sha256 of the table's Arrow IPC stream: the same rows, schema and order give the same
    hash, computed in C over whole buffers rather than row by row."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()


def to_frame(table: pa.Table, columns: tuple[str, ...] | list[str]) -> Any:
    """A pandas DataFrame of `columns` with NumPy dtypes (what scikit-learn expects)."""
    import pyarrow as pa

    chosen = table.select(list(columns))
    decimals = [i for i, f in enumerate(chosen.schema) if pa.types.is_decimal(f.type)]
    for i in decimals:  # PostgreSQL's numeric: floats, not Python Decimal objects scikit-learn takes for text
        chosen = chosen.set_column(i, chosen.schema.field(i).name, chosen.column(i).cast(pa.float64()))
    frame = chosen.to_pandas()
    for name in frame.columns:
        if frame[name].dtype == object or str(frame[name].dtype).startswith("str"):
            frame[name] = frame[name].fillna("").astype(object)
    return frame


def train_rows(n: int, spec: MLModelSpec) -> int:
    """How many of `n` labelled rows (the oldest) train; the rest are the holdout."""
    return max(1, min(n - 1, round(n * (1 - spec.holdout_fraction))))


def time_split(rows: pa.Table, spec: MLModelSpec) -> Split:
    """Oldest (1 - holdout_fraction) of the labelled rows train; the newest are the holdout."""
    cut = train_rows(rows.num_rows, spec)
    extra = (spec.baseline_column,) if spec.baseline_column else ()
    columns = dict.fromkeys((*spec.key_columns, spec.time_column, spec.label_column, *spec.features, *extra))
    frame = to_frame(rows, list(columns))
    train, holdout = frame.iloc[:cut], frame.iloc[cut:]
    return Split(train, holdout, train[spec.time_column].iloc[-1], holdout[spec.time_column].iloc[0])
