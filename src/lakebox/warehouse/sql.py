"""Writing SQL text safely: identifiers and string literals quoted for DuckDB and PostgreSQL."""

from __future__ import annotations


def quote(name: str) -> str:
    """An identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A string literal, single-quoted."""
    return "'" + value.replace("'", "''") + "'"
