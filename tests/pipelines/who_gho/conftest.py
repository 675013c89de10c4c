"""Helpers for the WHO GHO tests: OData pages built from records, and raw tables loaded from
pages the way the pipeline loads them (read as OData pages, gated, typed, batch-tagged)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakebox.pipelines.who_gho.contract import COUNTRIES, FIELDS, OBSERVATIONS
from lakebox.pipelines.who_gho.gate import check_observations
from lakebox.pipelines.who_gho.pages import ODataPageReader
from lakebox.quality import check_relation, failed, typed_select
from lakebox.quality.contract import Contract
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse, open_warehouse
from lakebox.warehouse.sql import literal

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "who_gho"


def page(records: Sequence[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({"@odata.context": "http://127.0.0.1/api/$metadata#WHOSIS_000001", **extra,
                         "value": list(records)})


def country(code: str, name: str, region: str) -> dict[str, Any]:
    from lakebox.pipelines.who_gho.countries import REGIONS

    return {"Code": code, "Title": name, "Dimension": "COUNTRY", "ParentDimension": "REGION",
            "ParentCode": region, "ParentTitle": REGIONS[region]}


def load_pages(wh: Warehouse, contract: Contract, pages: Sequence[bytes], folder: Path,
               ingested_at: dt.datetime | None = None) -> int:
    """Each page as one batch: read, gated (must pass), loaded into the contract's raw table."""
    if not wh.table_exists(*contract.table.split(".")):
        wh.execute(contract.raw_ddl())
    known = {r[0] for r in wh.query("select code from raw.who_countries")} \
        if wh.table_exists("raw", "who_countries") else None
    reader, rows = ODataPageReader(renames=FIELDS), 0
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (ingested_at or dt.datetime.now(dt.UTC)).replace(tzinfo=None).isoformat(sep=" ")
    for body in pages:
        path = folder / f"{uuid.uuid4().hex}.json"
        path.write_bytes(body)
        con = wh.scratch()
        con.execute(f"create or replace temp table who_batch as {reader.select_sql(con, str(path))}")
        results = (check_observations(con, "who_batch", known) if contract is OBSERVATIONS
                   else check_relation(con, "who_batch", contract))
        assert not failed(results), [(r.check_name, r.column_name, r.detail) for r in failed(results)]
        lineage = f"{literal(path.stem)} as batch_id, timestamp {literal(stamp)} as ingested_at, " \
                  f"{literal(str(path))} as lake_path"
        rows += wh.load_from_scratch(f"select t.*, {lineage} from ({typed_select('who_batch', contract)}) as t",
                                     contract.table, contract.raw_columns)
        con.execute("drop table who_batch")
    return rows


@contextmanager
def engine_warehouse(engine: str, home: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Settings, Warehouse]]:
    """A fresh warehouse on `engine` (duckdb, or postgres: a new database, dropped after) and
    its settings, with its own home; usable from fixtures of any scope."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_") or k == "LAKEBOX_CACHE_DIR"}
    env["LAKEBOX_HOME"] = str(home)
    database = None
    if engine == "postgres":
        import psycopg

        admin = request.getfixturevalue("postgres_admin_dsn")
        database = f"lakebox_who_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'create database "{database}"')
        env["LAKEBOX_WAREHOUSE"] = admin.rsplit("/", 1)[0] + f"/{database}"
    try:
        settings = Settings.load(env=env)
        with open_warehouse(settings) as wh:
            yield settings, wh
    finally:
        if database:
            with psycopg.connect(admin, autocommit=True) as con:
                con.execute(f'drop database if exists "{database}" with (force)')


__all__ = ["COUNTRIES", "FIXTURES", "OBSERVATIONS", "country", "engine_warehouse", "load_pages", "page"]
