"""dbt's compiled SQL parsed once per model version: sqlglot is cheap to import but parsing
every model each run is not, so results are kept by the SQL's checksum, in process and in
`$LAKEBOX_HOME/lineage/sql_cache.json`."""

from __future__ import annotations

import hashlib
from typing import Any

_PARSED: dict[str, dict[str, Any] | None] = {}


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:20]


def parsed(sql: str) -> dict[str, Any] | None:
    """{"tables": [schema.table, ...]} read by the SQL; None when sqlglot cannot parse it."""
    key = checksum(sql)
    if key not in _PARSED:
        _PARSED[key] = _parse(sql)
    return _PARSED[key]


def _parse(sql: str) -> dict[str, Any] | None:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return None
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    tables = sorted({f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db and t.name not in ctes})
    return {"tables": tables}
