"""Vectorized contract checks: one aggregate query per batch, samples only for failures.

Checks run in DuckDB over any relation (a parsed JSON page, a CSV file), whatever the
warehouse is, so the same gate guards DuckDB and PostgreSQL loads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakebox.quality.contract import (
    COMPATIBLE_INFERRED,
    DISCARD_ROW,
    DISCARD_VALUE,
    DUCKDB_CAST_TYPES,
    EVOLVE,
    FREEZE,
    Column,
    Contract,
    bound,
)
from lakebox.quality.gate import CheckResult
from lakebox.warehouse.sql import literal, quote

if TYPE_CHECKING:
    import duckdb

SAMPLE_ROWS = 5


def relation_columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"describe select * from {relation}").fetchall()}


def _source(col: Column, retyped: frozenset[str]) -> str:
    """The column as read; a retyped one (discard modes) through its text, so each value is
    judged alone (`true` is not the integer 1, a nested object is no number)."""
    q = quote(col.name)
    return f"cast({q} as varchar)" if col.name in retyped else q


def _cast_fails(col: Column, retyped: frozenset[str]) -> str:
    q = quote(col.name)
    return f"{q} is not null and try_cast({_source(col, retyped)} as {DUCKDB_CAST_TYPES[col.type]}) is null"


def _comparable(col: Column, retyped: frozenset[str]) -> str:
    """The column's values as min/max compare them: numbers, dates or instants."""
    kind = {"date": "date", "timestamp": "timestamptz"}.get(col.type, "double")
    return f"try_cast({_source(col, retyped)} as {kind})"


def _bound(col: Column, value: float | str) -> str:
    if col.type == "date":
        return f"cast({literal(str(value))} as date)"
    if col.type == "timestamp":
        return f"cast({literal(str(value))} as timestamptz)"
    return repr(float(value))


@dataclass(frozen=True)
class Schema:
    """A relation's columns against the contract, as its schema mode reads them."""

    results: list[CheckResult]
    present: list[Column]  # contract columns the relation has (retyped ones too, in discard modes)
    retyped: frozenset[str] = frozenset()  # present, but read as another type: judged value by value
    new: dict[str, str] = field(default_factory=dict)  # columns the contract lacks: name -> DuckDB type
    missing: frozenset[str] = frozenset()  # nullable contract columns absent (not freeze): loaded as NULL


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
    schema = schema_of(actual, contract)
    results = list(schema.results)
    conditions = _conditions(schema, contract)
    aggregates = ["count(*)"] + [f"count_if({pred})" for _, _, pred, _ in conditions]
    counts = con.execute(f"select {', '.join(aggregates)} from {relation}").fetchone() or (0,)
    results += _rule_results(con, relation, contract, conditions, counts, row_id)
    for key in _keys(contract, actual):
        results.append(_unique(con, relation, key, row_id))
    return results


def _keys(contract: Contract, actual: Mapping[str, str]) -> list[list[str]]:
    """The contract's unique keys whose every column the relation has."""
    return [list(key) for key in contract.keys if all(k in actual for k in key)]


def check_groups(
    con: duckdb.DuckDBPyConnection, relation: str, contract: Contract, group: str, groups: Sequence[int],
) -> dict[int, list[CheckResult]]:
    """`check_relation` for each group of `relation`'s rows (`group` numbers them, e.g. several
    batches of one shape in one table) at once: one aggregate query and one uniqueness query
    for all of them instead of a few per group; samples only for a failing group."""
    actual = {k: v for k, v in relation_columns(con, relation).items() if k != group}
    schema = schema_of(actual, contract)
    conditions = _conditions(schema, contract)
    g = quote(group)
    aggregates = ["count(*)"] + [f"count_if({pred})" for _, _, pred, _ in conditions]
    counts = {row[0]: row[1:] for row in
              con.execute(f"select {g}, {', '.join(aggregates)} from {relation} group by {g}").fetchall()}
    keys = _keys(contract, actual)
    dupes: list[dict[int, int]] = []
    for key in keys:
        cols = ", ".join(quote(k) for k in key)
        not_null = " and ".join(f"{quote(k)} is not null" for k in key)
        dupes.append(dict(con.execute(
            f"select {g}, sum(n - 1) from (select {g}, count(*) as n from {relation} where {not_null} "
            f"group by {g}, {cols} having count(*) > 1) group by {g}").fetchall()))
    out = {}
    for number in groups:
        one = f"(select * exclude ({g}) from {relation} where {g} = {int(number)})"
        results = list(schema.results)
        results += _rule_results(con, one, contract, conditions, counts.get(number, (0,) * len(aggregates)), None)
        for key, found in zip(keys, dupes, strict=True):
            failing = int(found.get(number) or 0)
            results.append(_unique(con, one, key, None) if failing else _unique_passed(key))
        out[number] = results
    return out


def schema_of(actual: Mapping[str, str], contract: Contract) -> Schema:
    """Schema drift against the contract, as its schema mode takes it: under `freeze` a new,
    missing or retyped column fails the batch; under `evolve` a new column is noted (it joins
    the raw table when the batch loads); under the discard modes a new column's values and a
    retyped column's bad values are judged row by row. Outside `freeze` a nullable column
    that is missing loads as NULL (noted); a required one fails the batch in every mode."""
    mode = contract.schema_mode
    results: list[CheckResult] = []
    present: list[Column] = []
    retyped: set[str] = set()
    missing: set[str] = set()
    for col in contract.columns:
        inferred = actual.get(col.name)
        if inferred is None:
            if mode != FREEZE and col.nullable:
                results.append(CheckResult("missing_column", col.name, True, 0, [],
                                           f"missing field '{col.name}': loaded as NULL ({mode})"))
                missing.add(col.name)
            else:
                required = " (a required column)" if mode != FREEZE else ""
                results.append(CheckResult("schema_drift", col.name, False, 0, [],
                                           f"missing field '{col.name}'{required}"))
            continue
        base = re.sub(r"\(.*\)$", "", inferred.upper())
        if base != "VARCHAR" and base not in COMPATIBLE_INFERRED[col.type] and not base.startswith("DECIMAL"):
            detail = f"field '{col.name}' retyped: expected {col.type}, got {inferred}"
            if mode in (DISCARD_ROW, DISCARD_VALUE):
                results.append(CheckResult("retyped_column", col.name, True, 0, [],
                                           f"{detail}; each value checked as {col.type} ({mode})"))
                retyped.add(col.name)
                present.append(col)
            else:
                results.append(CheckResult("schema_drift", col.name, False, 0, [], detail))
            continue
        results.append(CheckResult("schema_drift", col.name, True, 0, []))
        present.append(col)
    new = {name: kind for name, kind in actual.items() if name not in contract.names}
    for name, kind in new.items():
        if mode == FREEZE:
            results.append(CheckResult("schema_drift", name, False, 0, [], f"unexpected field '{name}'"))
        elif mode == EVOLVE:
            results.append(CheckResult("new_column", name, True, 0, [],
                                       f"new field '{name}' ({kind}): added to the raw table (evolve)"))
    return Schema(results, present, frozenset(retyped), new if mode != FREEZE else {}, frozenset(missing))


Condition = tuple[str, Column, str, str]  # (check, column, failing-row predicate, detail)


def _conditions(schema: Schema, contract: Contract) -> list[Condition]:
    conditions: list[Condition] = []
    retyped = schema.retyped
    for col in schema.present:
        q = quote(col.name)
        if col.type != "string":
            conditions.append(("type", col, _cast_fails(col, retyped), f"values that are not {col.type}"))
        if not col.nullable:
            conditions.append(("not_null", col, f"{q} is null", "null values"))
        if col.min is not None:
            conditions.append(("min", col, f"{_comparable(col, retyped)} < {_bound(col, col.min)}",
                               f"values below {bound(col.min)}"))
        if col.max is not None:
            conditions.append(("max", col, f"{_comparable(col, retyped)} > {_bound(col, col.max)}",
                               f"values above {bound(col.max)}"))
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
    if contract.schema_mode in (DISCARD_ROW, DISCARD_VALUE):
        for name in schema.new:
            conditions.append(("new_column", Column(name, "string"), f"{quote(name)} is not null",
                               f"values in field '{name}', which the contract does not have"))
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


def typed_select(
    relation: str, contract: Contract, schema: Schema | None = None, nulls: Mapping[str, str] | None = None,
    where: str | None = None,
) -> str:
    """SELECT that casts a checked relation to the contract's types (UTC timestamps).

    With the relation's `schema`: its missing columns read as NULL and its retyped ones via
    their text; `nulls` maps a column to the predicate of its values set aside (NULL in
    raw, discard_value); `where` keeps only some rows (discard_row)."""
    exprs = []
    missing = schema.missing if schema else frozenset()
    retyped = schema.retyped if schema else frozenset()
    for col in contract.columns:
        q = quote(col.name)
        cast = "timestamptz" if col.type == "timestamp" else DUCKDB_CAST_TYPES[col.type]
        value = "null" if col.name in missing else _source(col, retyped)
        if nulls and col.name in nulls:
            value = f"case when {nulls[col.name]} then null else {value} end"
        typed = f"cast({value} as {cast})"
        exprs.append(f"timezone('UTC', {typed}) as {q}" if col.type == "timestamp" else f"{typed} as {q}")
    return f"select {', '.join(exprs)} from {relation}" + (f" where {where}" if where else "")


# ------------------------------------------------------------------ discard_row / discard_value
DISCARDABLE = frozenset({"type", "not_null", "min", "max", "accepted_values", "pattern", "unique", "new_column"})
"""The rules whose breaking rows (or values) can be set aside while the rest of a batch loads."""

SET_ASIDE_SHOWN = 1000  # set-aside values listed in errors.json; the item's file holds every one


@dataclass(frozen=True)
class Discards:
    """What a discard mode sets aside of one batch: `table` (in scratch) lists each bad value
    (record, rule, column_name, value, whole_row); `keep` is the predicate of the rows that
    load, `nulls` the predicate, per column, of the values loaded as NULL (discard_value)."""

    table: str
    keep: str
    nulls: dict[str, str]
    rows: int  # rows set aside whole
    values: int  # values set aside from rows that load


def discards(con: duckdb.DuckDBPyConnection, relation: str, contract: Contract, row_id: str, table: str) -> Discards:
    """The bad rows and values of a checked batch under the contract's discard mode.

    discard_row sets aside every row breaking a rule. discard_value sets aside only the bad
    value (it loads as NULL), except where NULL would break the contract too: a null in a
    required column, a duplicate key, a bad value in a required or key column set aside the
    whole row. A duplicate key keeps its first record. One query over the batch."""
    actual = {k: v for k, v in relation_columns(con, relation).items() if k != row_id}
    schema = schema_of(actual, contract)
    keyed = {c for key in contract.keys for c in key}
    r = quote(row_id)
    parts: list[str] = []
    nulls: dict[str, list[str]] = {}
    for check, col, pred, _ in _conditions(schema, contract):
        whole = contract.schema_mode == DISCARD_ROW or check == "not_null" or not col.nullable or col.name in keyed
        parts.append(f"select {r} as record, {literal(check)} as rule, {literal(col.name)} as column_name, "
                     f"cast({quote(col.name)} as varchar) as value, {str(whole).lower()} as whole_row "
                     f"from {relation} where {pred}")
        if not whole and col.name in contract.names:
            nulls.setdefault(col.name, []).append(f"({pred})")
    for key in _keys(contract, actual):
        cols = ", ".join(quote(k) for k in key)
        not_null = " and ".join(f"{quote(k)} is not null" for k in key)
        value = "concat_ws(', ', " + ", ".join(f"cast({quote(k)} as varchar)" for k in key) + ")"
        parts.append(f"select record, 'unique' as rule, {literal(', '.join(key))} as column_name, value, true "
                     f"from (select {r} as record, {value} as value, "
                     f"row_number() over (partition by {cols} order by {r}) as n from {relation} "
                     f"where {not_null}) where n > 1")
    body = " union all ".join(parts) if parts else (
        "select null::bigint as record, null::varchar as rule, null::varchar as column_name, "
        "null::varchar as value, false as whole_row where false")
    con.execute(f"create or replace temp table {table} as select * from ({body}) order by record, rule, column_name")
    row = con.execute(f"select count(distinct record) filter (where whole_row), "
                      f"count(*) filter (where not whole_row) from {table}").fetchone() or (0, 0)
    return Discards(table, f"{r} not in (select record from {table} where whole_row)",
                    {name: " or ".join(preds) for name, preds in nulls.items()}, int(row[0]), int(row[1]))


def set_aside_rows(
    con: duckdb.DuckDBPyConnection, found: Discards, relation: str, row_id: str,
) -> tuple[bytes, list[dict[str, Any]]]:
    """The set-aside values as JSON lines (record, rule, column, value, and the whole row
    where the row was set aside), written by DuckDB, and the first few as dicts for errors.json."""
    import tempfile
    from pathlib import Path

    select = (f"select d.record, d.rule, d.column_name as column, d.value, "
              f"case when d.whole_row then to_json(t) end as row "
              f"from {found.table} as d left join {relation} as t on t.{quote(row_id)} = d.record "
              f"order by d.record, d.rule, d.column_name")
    with tempfile.TemporaryDirectory(prefix="lakebox-set-aside-") as folder:
        path = Path(folder) / "rows.jsonl"
        con.execute(f"copy ({select}) to {literal(str(path))} (format json)")
        body = path.read_bytes()
    cur = con.execute(f"select record, rule, column_name, value, whole_row from {found.table} "
                      f"order by record, rule, column_name limit {SET_ASIDE_SHOWN}")
    shown = [{"record": rec, "rule": rule, "column": column, "value": value, "row_set_aside": whole}
             for rec, rule, column, value, whole in cur.fetchall()]
    return body, shown
