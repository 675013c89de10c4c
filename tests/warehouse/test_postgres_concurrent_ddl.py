"""Several processes opening a new PostgreSQL warehouse at once (two runs, two Celery
workers starting together) all succeed: every schema and table lakebox creates (ops, ml,
raw, predictions, grants) is created under one advisory lock, not raced through
PostgreSQL's `if not exists` (UniqueViolation on pg_type_typname_nsp_index)."""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from tests.conftest import fresh_database

pytestmark = pytest.mark.postgres

PROCESSES = 6
ROUNDS = 4
OPS_TABLES = {"batches", "dq_results", "pipeline_runs", "quarantine", "source_state", "stage_runs"}


def _create_everything(url: str, home: str, release: Any, results: Any) -> None:
    """One process as a run starts: open the warehouse (schemas, ops tables), then the raw
    table, the ml tables, a predictions table, and the grants, all released together."""
    try:
        import pyarrow as pa

        from lakebox.declarative.config import load_config
        from lakebox.declarative.load import contract_for
        from lakebox.ingest.batches import ensure_raw_table
        from lakebox.ml import tables
        from lakebox.pipelines import orders
        from lakebox.settings import Settings
        from lakebox.warehouse import open_warehouse
        from lakebox.warehouse.grants import apply_grants

        config = load_config(Path(orders.__file__).parent)
        CONTRACT = contract_for(config, config.source.resources[0])
        settings = Settings.load(env={"LAKEBOX_HOME": home, "LAKEBOX_WAREHOUSE": url}, cwd=Path(home))
        release.wait(timeout=60)
        with open_warehouse(settings) as warehouse:
            ensure_raw_table(SimpleNamespace(warehouse=warehouse), CONTRACT)  # type: ignore[arg-type]
            for table in tables.DDL:
                tables.ensure(warehouse, table)
            tables.ensure_like(warehouse, "ml.race_predictions", pa.schema([("score", pa.float64())]))
        apply_grants(settings)
        results.put("ok")
    except BaseException:  # noqa: BLE001 - the child reports any failure to the parent
        results.put(traceback.format_exc())


def _tables(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as con:
        rows = con.execute("select table_schema, table_name from information_schema.tables "
                           "where table_schema in ('ops', 'ml', 'raw')").fetchall()
    found: dict[str, set[str]] = {}
    for schema, name in rows:
        found.setdefault(schema, set()).add(name)
    return found


def test_processes_opening_a_new_database_together_all_succeed(postgres_admin_dsn: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_no in range(ROUNDS):
        with fresh_database(postgres_admin_dsn) as url:
            release = context.Barrier(PROCESSES)
            results = context.Queue()
            homes = [tmp_path / f"r{round_no}p{i}" for i in range(PROCESSES)]
            workers = [context.Process(target=_create_everything, args=(url, str(home), release, results))
                       for home in homes]
            for home, worker in zip(homes, workers, strict=True):
                home.mkdir()
                worker.start()
            outcomes = [results.get(timeout=180) for _ in workers]
            for worker in workers:
                worker.join(timeout=60)
            failures = [o for o in outcomes if o != "ok"]
            assert not failures, f"round {round_no}: {len(failures)} of {PROCESSES} failed:\n{failures[0]}"
            found = _tables(url)
            assert found.get("ops") == OPS_TABLES
            from lakebox.ml import tables

            assert found.get("ml") == {name.removeprefix("ml.") for name in tables.DDL} | {"race_predictions"}
            assert found.get("raw") == {"orders"}
            with psycopg.connect(url) as con:
                granted = con.execute("select has_schema_privilege('lakebox_analyst', 'analytics', 'usage'), "
                                      "has_table_privilege('lakebox_engineer', 'ops.batches', 'insert')").fetchone()
            assert granted == (True, True)
