"""Remote services that are down or misconfigured: `lakebox run` and `lakebox status` print
one clear line naming what and where (secrets redacted), exit non-zero, and write nothing:
no lake objects, no ops rows."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.postgres

AWS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@pytest.fixture
def remote_env(lakebox_env: dict[str, str], pg_url: str, s3_bucket: str) -> dict[str, str]:
    return {**lakebox_env, **{k: os.environ[k] for k in AWS}, "LAKEBOX_WAREHOUSE": pg_url,
            "LAKEBOX_LAKE": f"s3://{s3_bucket}/lake", "LAKEBOX_DEMO_ORDERS": "200"}


@pytest.fixture
def s3_auth_enforced() -> Iterator[None]:
    """moto checks credentials (it accepts any by default) for the length of one test."""
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def _lake_objects(bucket: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _ops_tables(pg_url: str) -> int:
    with psycopg.connect(pg_url) as con:
        return con.execute("select count(*) from information_schema.tables where table_schema = 'ops'").fetchone()[0]


def _pg(url: str, user: str | None = None, password: str | None = None, port: int | None = None,
        database: str | None = None) -> str:
    base, _, db = url.rpartition("/")
    scheme, _, hostport = base.partition("@")
    host, _, old_port = hostport.partition(":")
    credentials = f"{user or 'postgres'}{':' + password if password else ''}"
    return f"postgresql://{credentials}@{host}:{port or old_port}/{database or db}"


PG_CASES = {
    "unreachable": (dict(user="app", password="s3cretpw", port=1),
                    r"error: cannot connect to PostgreSQL at postgresql://app:\*\*\*@127\.0\.0\.1:1/\S+: connection "
                    r"refused; is the server running\? check LAKEBOX_WAREHOUSE"),
    "wrong credentials": (dict(user="nobody_lakebox", password="s3cretpw"),
                          r"error: PostgreSQL at postgresql://nobody_lakebox:\*\*\*@127\.0\.0\.1:5432/\S+ refused the "
                          r"login of user 'nobody_lakebox': role \"nobody_lakebox\" does not exist; check the user and "
                          r"password in LAKEBOX_WAREHOUSE \(or PGPASSWORD\)"),
    "missing database": (dict(database="lakebox_no_such_db"),
                         r"error: PostgreSQL at postgresql://postgres@127\.0\.0\.1:5432/lakebox_no_such_db: database "
                         r"'lakebox_no_such_db' does not exist; create it \(createdb lakebox_no_such_db\) or fix "
                         r"LAKEBOX_WAREHOUSE"),
}


@pytest.mark.parametrize("case", list(PG_CASES))
def test_warehouse_failures(case: str, remote_env: dict[str, str], pg_url: str, s3_bucket: str) -> None:
    parts, message = PG_CASES[case]
    env = {**remote_env, "LAKEBOX_WAREHOUSE": _pg(pg_url, **parts)}
    for command in (("run", "orders"), ("status",)):
        result = run_cli(*command, env=env)
        assert result.returncode == 1, (command, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and re.fullmatch(message, lines[0]), (command, result.stderr)
        assert "s3cretpw" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
    assert _lake_objects(s3_bucket) == []


S3_CASES = {
    "unreachable": ({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
                    r"error: cannot reach the S3 endpoint http://127\.0\.0\.1:1 for lake s3://\S+/lake: connection "
                    r"refused; is the server running\? check AWS_ENDPOINT_URL"),
    "missing bucket": ({"LAKEBOX_LAKE": "s3://lakebox-no-such-bucket/lake"},
                       r"error: the bucket 'lakebox-no-such-bucket' does not exist at http://127\.0\.0\.1:\d+; "
                       r"create it or fix LAKEBOX_LAKE"),
}


@pytest.mark.parametrize("case", list(S3_CASES))
def test_lake_failures(case: str, remote_env: dict[str, str], pg_url: str, s3_bucket: str) -> None:
    overrides, message = S3_CASES[case]
    result = run_cli("run", "orders", env={**remote_env, **overrides})
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and re.fullmatch(message, lines[0]), result.stderr
    assert _ops_tables(pg_url) == 0  # the warehouse was never touched: no ops rows, not even tables
    assert _lake_objects(s3_bucket) == []


def test_wrong_s3_credentials(remote_env: dict[str, str], pg_url: str, s3_bucket: str, s3_auth_enforced: None) -> None:
    env = {**remote_env, "AWS_ACCESS_KEY_ID": "AKIAWRONGKEY0000", "AWS_SECRET_ACCESS_KEY": "wrong-secret-value"}
    result = run_cli("run", "orders", env=env)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and re.fullmatch(
        r"error: S3 at http://127\.0\.0\.1:\d+ refused access to lake s3://\S+/lake at http://127\.0\.0\.1:\d+: "
        r"InvalidAccessKeyId; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", lines[0]), result.stderr
    assert "wrong-secret-value" not in result.stderr
    assert _ops_tables(pg_url) == 0
