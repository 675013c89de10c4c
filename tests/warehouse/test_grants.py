"""`lakebox grants` on a real PostgreSQL: the roles exist, and a login user in each role can
do exactly what the matrix allows, on tables made before and after the grants."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from tests.conftest import _LAKEBOX_VARS, run_cli

pytestmark = pytest.mark.postgres

SCHEMAS = ("raw", "staging", "analytics", "ml", "ops")
# role -> (schemas it may select from, schemas it may insert into and create tables in)
ALLOWED = {
    "lakebox_engineer": (set(SCHEMAS), set(SCHEMAS)),
    "lakebox_scientist": ({"staging", "analytics", "ml"}, {"ml"}),
    "lakebox_analyst": ({"analytics"}, set()),
}


@pytest.fixture(scope="module")
def granted(postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database with a table in every schema, then `lakebox grants` run twice, then
    more tables (made later, as dbt would). Yields its URL. Shared by the module's tests:
    they only read it, as other users."""
    database = f"lakebox_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_dsn, autocommit=True) as con:
        con.execute(f'create database "{database}"')
    pg_url = postgres_admin_dsn.rsplit("/", 1)[0] + f"/{database}"
    env = {k: v for k, v in os.environ.items() if k not in _LAKEBOX_VARS}
    env.update(LAKEBOX_HOME=str(tmp_path_factory.mktemp("grants") / "home"), LAKEBOX_WAREHOUSE=pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as con:
            for schema in SCHEMAS:
                con.execute(f"create schema if not exists {schema}")
                con.execute(f"create table {schema}.before_grants (x int)")
                con.execute(f"insert into {schema}.before_grants values (1)")
        first = run_cli("grants", env=env)
        assert first.returncode == 0, first.stderr
        for role in ALLOWED:
            assert f"role {role}: " in first.stdout
        assert "lakebox_analyst: reads analytics; writes -" in first.stdout
        again = run_cli("grants", env=env)  # idempotent
        assert again.returncode == 0, again.stderr
        assert "role lakebox_engineer: exists" in again.stdout
        with psycopg.connect(pg_url, autocommit=True) as con:
            for schema in SCHEMAS:
                con.execute(f"create table {schema}.after_grants (x int)")
                con.execute(f"insert into {schema}.after_grants values (1)")
        yield pg_url
    finally:
        with psycopg.connect(postgres_admin_dsn, autocommit=True) as con:
            con.execute(f'drop database if exists "{database}" with (force)')


@pytest.fixture
def users(granted: str) -> Iterator[dict[str, str]]:
    """A LOGIN user in each role; yields role -> the user's connection URL. Whatever they
    made is dropped with them."""
    suffix = uuid.uuid4().hex[:8]
    made = {role: f"{role}_{suffix}" for role in ALLOWED}
    with psycopg.connect(granted, autocommit=True) as con:
        for role, user in made.items():
            con.execute(f"create role {user} login in role {role}")
    base, _, database = granted.rpartition("/")
    host = base.split("@", 1)[1]
    try:
        yield {role: f"postgresql://{user}@{host}/{database}" for role, user in made.items()}
    finally:
        with psycopg.connect(granted, autocommit=True) as con:
            for user in made.values():
                con.execute(f"drop owned by {user}")
                con.execute(f"drop role {user}")


def _can(url: str, sql: str) -> bool:
    with psycopg.connect(url, autocommit=True) as con:
        try:
            con.execute(sql)
        except errors.InsufficientPrivilege:
            return False
    return True


@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_can_do_exactly_what_the_matrix_allows(role: str, users: dict[str, str]) -> None:
    reads, writes = ALLOWED[role]
    url = users[role]
    for schema in SCHEMAS:
        for table in ("before_grants", "after_grants"):
            assert _can(url, f"select * from {schema}.{table}") == (schema in reads), (role, "select", schema, table)
            assert _can(url, f"insert into {schema}.{table} values (2)") == (schema in writes), (role, "insert", schema, table)
        assert _can(url, f"create table {schema}.made_by_{role} (x int)") == (schema in writes), (role, "create", schema)


def test_the_scientist_writes_ml_and_the_analyst_reads_only_marts(users: dict[str, str]) -> None:
    with psycopg.connect(users["lakebox_scientist"], autocommit=True) as con:
        con.execute("create table ml.features as select x, x * 2 as y from staging.before_grants")
        assert con.execute("select count(*) from ml.features").fetchone() == \
            con.execute("select count(*) from staging.before_grants").fetchone()
        with pytest.raises(errors.InsufficientPrivilege):
            con.execute("select * from raw.before_grants")
    with psycopg.connect(users["lakebox_analyst"], autocommit=True) as con:
        assert (1,) in con.execute("select x from analytics.after_grants").fetchall()
        with pytest.raises(errors.InsufficientPrivilege):
            con.execute("delete from analytics.before_grants")


def test_duckdb_has_no_roles_and_says_so(lakebox_env: dict[str, str]) -> None:
    result = run_cli("grants", env=lakebox_env)
    assert result.returncode == 2
    assert "error: lakebox grants: the warehouse is DuckDB" in result.stderr
    assert "has no roles or grants; role-based access needs PostgreSQL" in result.stderr
