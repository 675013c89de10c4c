"""retail on PostgreSQL: the same drop gives the same six marts as on DuckDB, row by row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from lakebox.pipelines.retail import SPEC
from lakebox.pipelines.retail.generator import generate_drops
from tests.conftest import run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def _rows(fetch: Any, mart: str) -> list[tuple]:
    """Rows in a stable order: by their non-numeric values, then by numbers rounded."""
    rows = [tuple(_norm(v) for v in row) for row in fetch(f"select * from {mart}")]
    return sorted(rows, key=lambda r: tuple(f"{v:.2f}" if isinstance(v, float) else repr(v) for v in r))


def _approx(row: tuple) -> tuple:
    """DuckDB doubles and PostgreSQL numerics differ in the last digits."""
    return tuple(pytest.approx(v, rel=1e-9, abs=1e-6) if isinstance(v, float) else v for v in row)


def test_retail_marts_are_identical_on_duckdb_and_postgresql(
    lakebox_env: dict[str, str], pg_url: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    generate_drops(str(landing / "retail"), stores=4, months=1, seed=3, start="2026-02-01")
    env = {**lakebox_env, "LAKEBOX_LANDING": str(landing)}
    on_duckdb = run_cli("run", "retail", env=env)
    assert on_duckdb.returncode == 0, on_duckdb.stderr[-3000:]
    pg_env = {**env, "LAKEBOX_HOME": str(tmp_path / "pg-home"), "LAKEBOX_WAREHOUSE": pg_url}
    on_postgres = run_cli("run", "retail", env=pg_env)
    assert on_postgres.returncode == 0, on_postgres.stderr[-3000:]

    con = duckdb.connect(str(Path(env["LAKEBOX_HOME"]) / "warehouse.duckdb"), read_only=True)
    with psycopg.connect(pg_url) as pg:
        for mart in SPEC.marts:
            expected = _rows(lambda sql: con.execute(sql).fetchall(), mart)
            assert expected, f"{mart} is empty"
            actual = _rows(lambda sql: pg.execute(sql).fetchall(), mart)
            assert actual == [_approx(row) for row in expected], mart
    con.close()
