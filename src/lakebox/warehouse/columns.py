"""A few rows from Python into DuckDB without Arrow.

`pa.table`/`pa.array` over Python lists make pyarrow import pandas to check what each list
is: ~0.4 s of a one-shot run spent on a handful of ledger or file rows. DuckDB takes a
Python list as one LIST parameter and unnests it, with no pandas and no per-row statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lakebox.warehouse.sql import quote

if TYPE_CHECKING:
    import duckdb

Columns = Mapping[str, tuple[str, Sequence[Any]]]  # name -> (SQL type, values), all of one length


def temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: Columns) -> None:
    """(Re)create temp table `name` holding `columns`' rows, in the given order."""
    lengths = {len(values) for _, values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns for {name} differ in length: {sorted(lengths)}")
    select = ", ".join(f"unnest(cast(? as {kind}[])) as {quote(column)}" for column, (kind, _) in columns.items())
    con.complete()  # a half-read result would block the statement
    con.execute(f"create or replace temp table {quote(name)} as select {select}",
                [list(values) for _, values in columns.values()])
