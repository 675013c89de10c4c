"""Read-only queries behind the dashboard pages, through the `Warehouse` interface.

Every query opens a read-only warehouse and lets go of it at once: DuckDB lets one
process write a file or several processes read it, so a dashboard that held a connection
would block the next `lakebox run`. DuckDB files are opened read-only; PostgreSQL
sessions are read-only transactions. The ops.* tables are read through the modules that
own them (lakebox.warehouse.ops). Results are cached for a short while so page reloads do
not hammer the warehouse. SQL here uses `?` placeholders and runs unchanged on both engines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import streamlit as st

from lakebox.errors import WarehouseError
from lakebox.locks import shown_run_state
from lakebox.settings import Settings, redact
from lakebox.warehouse import Warehouse, open_warehouse
from lakebox.warehouse.kinds import kind_named, kind_of
from lakebox.warehouse.ops import audit, ledger, quarantine

CACHE_SECONDS = 30


@dataclass(frozen=True)
class WarehouseRef:
    """Where to read: hashable, so cached queries key on it."""

    kind: str
    location: str
    home: str = ""  # where the run locks are: a run left `running` by a killed process shows as interrupted

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseRef:
        kind = kind_of(settings)
        return cls(kind.name, kind.location(settings.warehouse), str(settings.home))
    def describe(self) -> str:
        return f"{self.kind}:{redact(self.location)}"


def configured_warehouse() -> WarehouseRef:
    return WarehouseRef.from_settings(Settings.load())


# ------------------------------------------------------------------ the one way in
@contextmanager
def reader(wh: WarehouseRef) -> Iterator[Warehouse]:
    """The warehouse at `wh`, read-only, released when the block ends."""
    import duckdb

    try:
        with open_warehouse(dataclasses.replace(Settings.load(), warehouse=wh.location), read_only=True) as warehouse:
            yield warehouse
    except WarehouseError as exc:
        said = kind_named(wh.kind).reader_error(exc, wh.describe())
        if said is exc:
            raise
        raise said from exc
    except duckdb.Error as exc:
        raise WarehouseError(f"query on the warehouse {wh.describe()} failed: {exc}") from exc


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def fetch(wh: WarehouseRef, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
    """Run one read-only query; dates become datetimes and decimals floats on every engine."""
    with reader(wh) as warehouse:
        return _normalise(warehouse.query_arrow(sql, list(params)).to_pandas())


_OPS: dict[str, tuple[Callable[..., list[tuple[Any, ...]]], tuple[str, ...]]] = {
    "runs_page": (audit.runs_page, ("run_id", "pipeline", "status", "started_at", "duration_s", "rows_in",
                                    "rows_out", "error")),
    "run_counts": (audit.run_counts, ("pipeline", "status", "runs")),
    "stage_runs": (audit.stage_runs, ("stage", "status", "started_at", "duration_s", "rows_in", "rows_out",
                                      "error")),
    "dq_summary": (audit.dq_summary, ("source", "check_name", "column_name", "checks", "failed", "failing_rows",
                                      "last_checked")),
    "dq_failures": (audit.dq_failures, ("checked_at", "source", "batch_id", "check_name", "column_name",
                                        "failing_rows", "sample", "run_id")),
    "quarantined_batches": (ledger.quarantined_batches, ("batch_id", "source", "error", "rows", "quarantined_at",
                                                         "landed_at", "lake_path", "run_id")),
}


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _ops(wh: WarehouseRef, what: str, args: tuple[Any, ...] = ()) -> pd.DataFrame:
    """One ops.* read, through the module that owns the table."""
    read, columns = _OPS[what]
    with reader(wh) as warehouse:
        rows = read(warehouse, *args)
    return _normalise(pd.DataFrame.from_records(rows, columns=list(columns)))


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    for column in df.columns:
        values = df[column].dropna()
        if values.empty or df[column].dtype != object:
            continue
        first = values.iloc[0]
        if isinstance(first, decimal.Decimal):
            df[column] = df[column].astype("float64")
        elif isinstance(first, dt.date):
            df[column] = pd.to_datetime(df[column])
    return df


def has_rows(wh: WarehouseRef, table: str) -> bool:
    """True when `schema.table` exists and holds at least one row."""
    if not kind_named(wh.kind).exists(wh.location):
        return False
    schema, name = table.split(".")
    found = fetch(
        wh,
        "select count(*) as n from information_schema.tables where table_schema = ? and table_name = ?",
        (schema, name),
    )
    if not int(found["n"].iloc[0]):
        return False
    return not fetch(wh, f"select 1 as one from {table} limit 1").empty


def in_filter(column: str, values: Sequence[Any] | None) -> tuple[str, tuple[Any, ...]]:
    """A `column in (...)` filter; None means no filter, an empty list matches nothing."""
    if values is None:
        return "", ()
    if not values:
        return " and 1 = 0", ()
    return f" and {column} in ({', '.join('?' for _ in values)})", tuple(values)


# ------------------------------------------------------------------ platform (ops.*)
RUNS_PER_PAGE = 50
INTERRUPTED = "interrupted"  # shown for a `running` run whose process has gone


def run_counts(wh: WarehouseRef) -> pd.DataFrame:
    """Runs per pipeline and recorded status: the Platform page's totals and filter choices."""
    return _ops(wh, "run_counts")


def runs_page(wh: WarehouseRef, pipelines: tuple[str, ...] | None = None, statuses: tuple[str, ...] | None = None,
              page: int = 1, per_page: int = RUNS_PER_PAGE) -> pd.DataFrame:
    """Page `page` (from 1) of the runs, newest first. A run still `running` whose process has
    gone is `interrupted`, as in `lakebox status` (checked on every read, not cached); choosing
    `interrupted` reads the `running` runs and keeps those."""
    recorded = None if statuses is None else tuple(sorted({"running" if s == INTERRUPTED else s for s in statuses}))
    runs = _ops(wh, "runs_page", (pipelines, recorded, per_page, (page - 1) * per_page)).copy()
    if wh.home and not runs.empty:
        shown = [shown_run_state(Path(wh.home), p, r, s, e) for p, r, s, e in
                 zip(runs["pipeline"], runs["run_id"], runs["status"], runs["error"], strict=True)]
        runs["status"], runs["error"] = [s for s, _ in shown], [e for _, e in shown]
    if statuses is not None:
        runs = runs[runs["status"].isin(statuses)].reset_index(drop=True)
    return runs


def stage_runs(wh: WarehouseRef, run_id: str) -> pd.DataFrame:
    return _ops(wh, "stage_runs", (run_id,))


def dq_summary(wh: WarehouseRef) -> pd.DataFrame:
    """Per source and check: how often it ran, failed, and when it last ran."""
    return _ops(wh, "dq_summary")


def dq_failures(wh: WarehouseRef, limit: int = 200) -> pd.DataFrame:
    return _ops(wh, "dq_failures", (limit,))


def quarantined_batches(wh: WarehouseRef) -> pd.DataFrame:
    """Quarantined batches with their failed rules spelled out (the ledger keeps them as JSON)."""
    df = _ops(wh, "quarantined_batches")
    return df.assign(error=[describe_failed_rules(e) for e in df["error"]]).rename(columns={"error": "failed_rules"})


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def open_quarantine(wh: WarehouseRef) -> pd.DataFrame:
    """Open quarantined items (ops.quarantine), oldest first, their rules spelled out."""
    with reader(wh) as warehouse:
        found = quarantine.items(warehouse) if warehouse.table_exists("ops", "quarantine") else []
    return pd.DataFrame.from_records(
        [(i.id, i.pipeline, i.source, i.item, i.batch_id, i.opened_at, describe_failed_rules(i.rules),
          i.quarantine_path) for i in found],
        columns=["id", "pipeline", "source", "item", "batch_id", "opened_at", "failed_rules", "quarantine_path"],
    )


def describe_failed_rules(error: str | None) -> str:
    """`rule(column): N rows — detail` per failed rule; text that is not the JSON list stays as is."""
    if not error:
        return ""
    try:
        rules = orjson.loads(error)
    except orjson.JSONDecodeError:
        return error
    if not isinstance(rules, list):
        return error
    parts = []
    for rule in rules:
        if not isinstance(rule, dict):
            parts.append(str(rule))
            continue
        name = str(rule.get("rule", "?"))
        if rule.get("column"):
            name += f"({rule['column']})"
        text = f"{name}: {rule.get('failing_rows', 0)} rows"
        if rule.get("detail"):
            text += f" — {rule['detail']}"
        parts.append(text)
    return "; ".join(parts)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def quarantine_files(lake_url: str) -> list[dict[str, Any]]:
    """The lake's quarantine/ error documents, newest day first, each with its key."""
    from lakebox.lake.remote import lake_for_url

    if "://" not in lake_url and not Path(lake_url, "quarantine").is_dir():
        return []
    lake = lake_for_url(lake_url, Settings.load().env)
    docs = []
    for key in lake.list("quarantine"):
        if key.endswith(".errors.json"):
            try:
                doc = orjson.loads(lake.read_bytes(key))
            except orjson.JSONDecodeError as exc:
                doc = {"unreadable": str(exc)}
            docs.append({"key": key, "document": doc})
    return sorted(docs, key=lambda d: d["key"], reverse=True)
