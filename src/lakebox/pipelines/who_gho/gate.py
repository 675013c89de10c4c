"""The GHO gate: the contracts' rules plus the rules beyond one record's columns.

- `null_without_reason`: NumericValue may be null only when Value or Comments says why
  (GHO writes e.g. "No data", or a comment on why an estimate is not published).
- `known_country`: a COUNTRY record names a country of the loaded country dimension
  (raw.who_countries), the way retail checks store ids against stores.csv. Regional and
  global aggregates (SpatialDimType REGION, GLOBAL, ...) are not countries.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from lakebox.pipelines.who_gho.contract import OBSERVATIONS
from lakebox.quality import check_relation
from lakebox.quality.checks import SAMPLE_ROWS, relation_columns
from lakebox.quality.gate import CheckResult

if TYPE_CHECKING:
    import duckdb

    from lakebox.warehouse import Warehouse

KNOWN_COUNTRIES = "lakebox_who_known_countries"


def check_observations(
    con: duckdb.DuckDBPyConnection, relation: str, known_countries: Collection[str] | None
) -> list[CheckResult]:
    """Every rule for a batch of GHO records in `relation`: the contract's and the rules
    beyond it. `known_countries` None: the country dimension is not loaded yet, and the
    caller must keep the batch pending."""
    return check_relation(con, relation, OBSERVATIONS) + beyond_contract(con, relation, known_countries)


def beyond_contract(
    con: duckdb.DuckDBPyConnection, relation: str, known_countries: Collection[str] | None
) -> list[CheckResult]:
    """The rules beyond the contract (see module doc), for a loader that runs the contract's
    own checks itself; a rule whose columns drifted away is left to the drift check."""
    present = set(relation_columns(con, relation))
    results = []
    if {"numeric_value", "value", "comments"} <= present:
        results.append(_rule(
            con, relation, "null_without_reason", "numeric_value",
            "numeric_value is null and nullif(trim(cast(value as varchar)), '') is null "
            "and nullif(trim(cast(comments as varchar)), '') is null",
            "values missing with no reason in Value or Comments",
        ))
    if known_countries is not None and {"spatial_dim", "spatial_dim_type"} <= present:
        con.execute(f"create or replace temp table {KNOWN_COUNTRIES} as select unnest(?) as code",
                    [sorted(known_countries)])
        results.append(_rule(
            con, relation, "known_country", "spatial_dim",
            f"spatial_dim_type = 'COUNTRY' and cast(spatial_dim as varchar) not in (select code from {KNOWN_COUNTRIES})",
            "country codes not in the country dimension (raw.who_countries)",
        ))
        con.execute(f"drop table {KNOWN_COUNTRIES}")
    return results


def loaded_countries(wh: Warehouse) -> set[str] | None:
    """Codes of the loaded country dimension; None when none is loaded yet."""
    if not wh.table_exists("raw", "who_countries"):
        return None
    codes = {row[0] for row in wh.query("select distinct code from raw.who_countries")}
    return codes or None


def _rule(con: Any, relation: str, name: str, column: str, predicate: str, detail: str) -> CheckResult:
    failing = int(con.execute(f"select count(*) from {relation} where {predicate}").fetchall()[0][0])
    sample: list[dict[str, Any]] = []
    if failing:
        cur = con.execute(f"select * from {relation} where {predicate} limit {SAMPLE_ROWS}")
        names = [d[0] for d in cur.description]
        sample = [{n: v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
                   for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
    return CheckResult(name, column, failing == 0, failing, sample, detail)
