"""The command line as a user meets it: fast help, clear errors, redacted settings."""

import subprocess
import sys

from tests.conftest import run_cli

HEAVY = ("dbt", "duckdb", "pyarrow", "streamlit", "fastapi", "psycopg", "httpx", "s3fs", "numpy")


def test_help_imports_nothing_heavy() -> None:
    probe = f"import sys; import lakebox.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"`lakebox --help` would import {out}"


def test_help_lists_the_commands(lakebox_env: dict[str, str]) -> None:
    result = run_cli("--help", env=lakebox_env)
    assert result.returncode == 0
    for command in ("run", "status", "orders-api", "retail-generate", "dashboard", "grants", "bench", "demo"):
        assert command in result.stdout


def test_unknown_pipeline_is_a_clear_error(lakebox_env: dict[str, str]) -> None:
    result = run_cli("run", "nosuch", env=lakebox_env)
    assert result.returncode == 2
    assert "unknown pipeline 'nosuch'" in result.stderr and "orders" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_redacts_secrets(lakebox_env: dict[str, str]) -> None:
    env = {**lakebox_env, "LAKEBOX_WAREHOUSE": "postgresql://app:Sup3rSecret@127.0.0.1:5432/wh",
           "LAKEBOX_ORDERS_API_TOKEN": "tok-Sup3rSecret", "LAKEBOX_ORDERS_PAGE_SIZE": "250"}
    result = run_cli("config", env=env)
    assert result.returncode == 0
    assert "postgresql://app:***@127.0.0.1:5432/wh" in result.stdout
    lines = {line.split()[0]: line.split(maxsplit=1)[1] for line in result.stdout.splitlines()}
    assert lines["orders.page_size"] == "250" and lines["orders.api_token"] == "***"
    assert lines["retail.policy"] == "quarantine" and lines["orders.api_url"] == "(unset)"
    assert "Sup3rSecret" not in result.stdout + result.stderr


def test_status_on_a_new_home_says_what_to_do(lakebox_env: dict[str, str]) -> None:
    result = run_cli("status", env=lakebox_env)
    assert result.returncode == 0
    assert "No runs yet" in result.stdout and "lakebox run" in result.stdout


def test_orders_api_rejects_a_bad_fault_spec(lakebox_env: dict[str, str]) -> None:
    result = run_cli("orders-api", "--port", "0", "--fault", "teapot", env=lakebox_env)
    assert result.returncode == 2
    assert "teapot" in result.stderr and "Traceback" not in result.stderr
