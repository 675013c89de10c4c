"""Vectorized contract checks: one aggregate query per batch, samples only for failures.

Checks run in DuckDB over any relation (a parsed JSON page, a CSV file), whatever the
warehouse is, so the same gate guards DuckDB and PostgreSQL loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakebox.quality.contract import COMPATIBLE_INFERRED, DUCKDB_CAST_TYPES, Column, Contract
from lakebox.quality.gate import CheckResult
from lakebox.warehouse.sql import literal, quote

if TYPE_CHECKING:
    import duckdb

SAMPLE_ROWS = 5


def relation_columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"describe select * from {relation}").fetchall()}


def _cast_fails(col: Column) -> str:
    q = quote(col.name)
    return f"{q} is not null and try_cast({q} as {DUCKDB_CAST_TYPES[col.type]}) is null"


def _numeric(col: Column) -> str:
    return f"try_cast({quote(col.name)} as double)"


def check_relation(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    contract: Contract,
    row_id: str | None = None,
) -> list[CheckResult]:
    """Every rule of the contract against `relation`; one result per rule and column.

    `row_id` names a column holding each row's position in the source (a file's line
    number), reported in samples and never treated as drift.
    """
    actual = {k: v for k, v in relation_columns(con, relation).items() if k != row_id}
    results, present = _schema_results(actual, contract)
    conditions = _conditions(present)
    aggregates = ["count(*)"] + [f"count_if({pred})" for _, _, pred, _ in conditions]
    counts = con.execute(f"select {', '.join(aggregates)} from {relation}").fetchone() or (0,)
    results += _rule_results(con, relation, contract, conditions, counts, row_id)
    key = [k for k in contract.unique_key if k in actual]
    if key and len(key) == len(contract.unique_key):
        results.append(_unique(con, relation, key, row_id))
    return results


def check_groups(
    con: duckdb.DuckDBPyConnection, relation: str, contract: Contract, group: str, groups: Sequence[int],
) -> dict[int, list[CheckResult]]:
    """`check_relation` for each group of `relation`'s rows (`group` numbers them, e.g. several
    batches of one shape in one table) at once: one aggregate query and one uniqueness query
    for all of them instead of a few per group; samples only for a failing group."""
    actual = {k: v for k, v in relation_columns(con, relation).items() if k != group}
    schema, present = _schema_results(actual, contract)
    conditions = _conditions(present)
    g = quote(group)
    aggregates = ["count(*)"] + [f"count_if({pred})" for _, _, pred, _ in conditions]
    counts = {row[0]: row[1:] for row in
              con.execute(f"select {g}, {', '.join(aggregates)} from {relation} group by {g}").fetchall()}
    key = [k for k in contract.unique_key if k in actual]
    dupes: dict[int, int] = {}
    if key and len(key) == len(contract.unique_key):
        cols = ", ".join(quote(k) for k in key)
        not_null = " and ".join(f"{quote(k)} is not null" for k in key)
        dupes = dict(con.execute(
            f"select {g}, sum(n - 1) from (select {g}, count(*) as n from {relation} where {not_null} "
            f"group by {g}, {cols} having count(*) > 1) group by {g}").fetchall())
    out = {}
    for number in groups:
        one = f"(select * exclude ({g}) from {relation} where {g} = {int(number)})"
        results = list(schema)
        results += _rule_results(con, one, contract, conditions, counts.get(number, (0,) * len(aggregates)), None)
        if key and len(key) == len(contract.unique_key):
            failing = int(dupes.get(number) or 0)
            results.append(_unique(con, one, key, None) if failing else _unique_passed(key))
        out[number] = results
    return out


def _schema_results(actual: dict[str, str], contract: Contract) -> tuple[list[CheckResult], list[Column]]:
    """Schema drift against the contract: a result per column, and the columns present as typed."""
    results: list[CheckResult] = []
    present: list[Column] = []
    for col in contract.columns:
        inferred = actual.get(col.name)
        if inferred is None:
            results.append(CheckResult("schema_drift", col.name, False, 0, [], f"missing field '{col.name}'"))
            continue
        base = re.sub(r"\(.*\)$", "", inferred.upper())
        if base != "VARCHAR" and base not in COMPATIBLE_INFERRED[col.type] and not base.startswith("DECIMAL"):
            results.append(CheckResult(
                "schema_drift", col.name, False, 0, [],
                f"field '{col.name}' retyped: expected {col.type}, got {inferred}",
            ))
            continue
        results.append(CheckResult("schema_drift", col.name, True, 0, []))
        present.append(col)
    for name in actual:
        if name not in contract.names:
            results.append(CheckResult("schema_drift", name, False, 0, [], f"unexpected field '{name}'"))
    return results, present


Condition = tuple[str, Column, str, str]  # (check, column, failing-row predicate, detail)


def _conditions(present: list[Column]) -> list[Condition]:
    conditions: list[Condition] = []
    for col in present:
        q = quote(col.name)
        if col.type != "string":
            conditions.append(("type", col, _cast_fails(col), f"values that are not {col.type}"))
        if not col.nullable:
            conditions.append(("not_null", col, f"{q} is null", "null values"))
        if col.min is not None:
            conditions.append(("min", col, f"{_numeric(col)} < {col.min!r}", f"values below {col.min:g}"))
        if col.max is not None:
            conditions.append(("max", col, f"{_numeric(col)} > {col.max!r}", f"values above {col.max:g}"))
        if col.accepted:
            allowed = ", ".join(literal(v) for v in col.accepted)
            conditions.append((
                "accepted_values", col, f"{q} is not null and cast({q} as varchar) not in ({allowed})",
                "values outside " + ", ".join(col.accepted),
            ))
        if col.pattern:
            conditions.append((
                "pattern", col,
                f"{q} is not null and not regexp_full_match(cast({q} as varchar), {literal(col.pattern)})",
                f"values not matching {col.pattern}",
            ))
    return conditions


def _rule_results(
    con: duckdb.DuckDBPyConnection, relation: str, contract: Contract, conditions: list[Condition],
    counts: Sequence[Any], row_id: str | None,
) -> list[CheckResult]:
    """The row count and each condition's result from their counts; samples of failing rows."""
    total = int(counts[0])
    results = [CheckResult(
        "row_count", None, total >= contract.min_rows, 0 if total >= contract.min_rows else 1, [],
        f"{total} rows, at least {contract.min_rows} expected",
    )]
    for (check, column, pred, detail), failing in zip(conditions, counts[1:], strict=True):
        failing = int(failing or 0)
        sample = _sample(con, relation, pred, row_id) if failing else []
        results.append(CheckResult(check, column.name, failing == 0, failing, sample, detail))
    return results


def _unique_passed(key: list[str]) -> CheckResult:
    return CheckResult("unique", ", ".join(key), True, 0, [], "duplicate keys within the batch")


def _unique(con: duckdb.DuckDBPyConnection, relation: str, key: list[str], row_id: str | None) -> CheckResult:
    cols = ", ".join(quote(k) for k in key)
    not_null = " and ".join(f"{quote(k)} is not null" for k in key)
    dupes = f"select {cols} from {relation} where {not_null} group by {cols} having count(*) > 1"
    row = con.execute(
        f"select coalesce(sum(n - 1), 0) from (select count(*) as n from {relation} "
        f"where {not_null} group by {cols} having count(*) > 1)"
    ).fetchone()
    failing = int(row[0]) if row else 0
    sample = _sample(con, relation, f"({cols}) in ({dupes})", row_id) if failing else []
    return CheckResult("unique", ", ".join(key), failing == 0, failing, sample, "duplicate keys within the batch")


def _sample(con: duckdb.DuckDBPyConnection, relation: str, predicate: str, row_id: str | None) -> list[dict[str, Any]]:
    order = f" order by {quote(row_id)}" if row_id else ""
    cur = con.execute(f"select * from {relation} where {predicate}{order} limit {SAMPLE_ROWS}")
    names = [d[0] for d in cur.description]
    return [
        {n: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for n, v in zip(names, row, strict=True)}
        for row in cur.fetchall()
    ]


def typed_select(relation: str, contract: Contract) -> str:
    """SELECT that casts a checked relation to the contract's types (UTC timestamps)."""
    exprs = []
    for col in contract.columns:
        q = quote(col.name)
        if col.type == "timestamp":
            exprs.append(f"timezone('UTC', cast({q} as timestamptz)) as {q}")
        else:
            exprs.append(f"cast({q} as {DUCKDB_CAST_TYPES[col.type]}) as {q}")
    return f"select {', '.join(exprs)} from {relation}"
