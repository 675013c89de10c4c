"""A source's contract: columns, types, nullability, ranges, uniqueness, accepted values.

Declared once in the source's pipeline folder; it drives the batch checks, the raw DDL
and the docs. Types are logical; each maps to a portable warehouse type and to the DuckDB
type used to check and cast values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LogicalType = Literal["string", "decimal", "double", "integer", "boolean", "date", "timestamp"]
SchemaMode = Literal["freeze", "evolve", "discard_row", "discard_value"]
FREEZE, EVOLVE, DISCARD_ROW, DISCARD_VALUE = "freeze", "evolve", "discard_row", "discard_value"

WAREHOUSE_TYPES: dict[str, str] = {
    "string": "varchar",
    "decimal": "numeric(18,2)",
    "double": "double precision",
    "integer": "bigint",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}

DUCKDB_CAST_TYPES: dict[str, str] = {
    "string": "varchar",
    "decimal": "decimal(18,2)",
    "double": "double",
    "integer": "bigint",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}

# DuckDB types a parser may infer that still hold values of the logical type.
COMPATIBLE_INFERRED: dict[str, tuple[str, ...]] = {
    "string": ("VARCHAR",),
    "decimal": ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DECIMAL", "SMALLINT", "TINYINT"),
    "double": ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DECIMAL", "SMALLINT", "TINYINT"),
    "integer": ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "SMALLINT", "TINYINT", "UINTEGER"),
    "boolean": ("BOOLEAN",),
    "date": ("DATE",),
    "timestamp": ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: LogicalType
    nullable: bool = True
    min: float | str | None = None  # a number; an ISO date/time for date and timestamp columns
    max: float | str | None = None
    accepted: tuple[str, ...] | None = None
    pattern: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Contract:
    source: str
    table: str
    columns: tuple[Column, ...]
    unique_key: tuple[str, ...] = ()
    # further keys unique within a batch (a column declared `unique`), checked as unique_key is
    unique_keys: tuple[tuple[str, ...], ...] = ()
    # (key, version) of one row version, e.g. (order_id, updated_at): a version already in
    # the raw table is not loaded twice when an incremental fetch overlaps the last one.
    version_key: tuple[str, ...] = ()
    min_rows: int = 1
    description: str = ""
    # what a batch that breaks the contract does (dlt's names; nothing is dropped unseen):
    # freeze: quarantined whole; evolve: new columns join the raw table, rules as freeze;
    # discard_row / discard_value: its bad rows / values go to a quarantine item, the rest loads
    schema_mode: SchemaMode = "freeze"
    # Columns the platform adds to every raw row; the source never sends them.
    lineage: tuple[tuple[str, str], ...] = field(
        default=(("batch_id", "varchar"), ("ingested_at", "timestamp"), ("lake_path", "varchar"))
    )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def raw_columns(self) -> tuple[str, ...]:
        return self.names + tuple(name for name, _ in self.lineage)

    @property
    def keys(self) -> tuple[tuple[str, ...], ...]:
        """Every key unique within a batch: `unique_key`, then `unique_keys`."""
        return tuple(dict.fromkeys(k for k in (self.unique_key, *self.unique_keys) if k))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def raw_ddl(self) -> str:
        cols = [f"{c.name} {WAREHOUSE_TYPES[c.type]}" for c in self.columns]
        cols += [f"{name} {sql_type} not null" for name, sql_type in self.lineage]
        return f"create table if not exists {self.table} (\n    " + ",\n    ".join(cols) + "\n)"

    def to_markdown(self) -> str:
        """The contract as a docs table."""
        lines = [
            f"### `{self.source}` → `{self.table}`",
            "",
            self.description,
            "",
            "| column | type | nullable | rule |",
            "|---|---|---|---|",
        ]
        for c in self.columns:
            rules = []
            if c.min is not None:
                rules.append(f">= {bound(c.min)}")
            if c.max is not None:
                rules.append(f"<= {bound(c.max)}")
            if c.accepted:
                rules.append("in " + ", ".join(c.accepted))
            if c.pattern:
                rules.append(f"matches `{c.pattern}`")
            if any(c.name in key for key in self.keys):
                rules.append("unique in batch")
            lines.append(f"| {c.name} | {c.type} | {'yes' if c.nullable else 'no'} | {'; '.join(rules)} |")
        return "\n".join(lines)


def bound(value: float | str) -> str:
    """A min/max as people write it: 10, 0.5, 2024-01-01."""
    return f"{value:g}" if isinstance(value, (int, float)) else value
