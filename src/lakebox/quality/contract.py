"""A source's contract: columns, types, nullability, ranges, uniqueness, accepted values.

Declared once in the source's pipeline folder; it drives the batch checks, the raw DDL
and the docs. Types are logical; each maps to a portable warehouse type and to the DuckDB
type used to check and cast values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LogicalType = Literal["string", "decimal", "double", "integer", "boolean", "date", "timestamp"]

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
    min: float | None = None
    max: float | None = None
    accepted: tuple[str, ...] | None = None
    pattern: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Contract:
    source: str
    table: str
    columns: tuple[Column, ...]
    unique_key: tuple[str, ...] = ()
    # (key, version) of one row version, e.g. (order_id, updated_at): a version already in
    # the raw table is not loaded twice when an incremental fetch overlaps the last one.
    version_key: tuple[str, ...] = ()
    min_rows: int = 1
    description: str = ""
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
                rules.append(f">= {c.min:g}")
            if c.max is not None:
                rules.append(f"<= {c.max:g}")
            if c.accepted:
                rules.append("in " + ", ".join(c.accepted))
            if c.pattern:
                rules.append(f"matches `{c.pattern}`")
            if c.name in self.unique_key:
                rules.append("unique in batch")
            lines.append(f"| {c.name} | {c.type} | {'yes' if c.nullable else 'no'} | {'; '.join(rules)} |")
        return "\n".join(lines)
