"""The command line as a user meets it: fast help, clear errors, redacted settings."""

import subprocess
import sys
from pathlib import Path

import pytest

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
    lines = {line.split("\t")[0]: line.split("\t")[1:] for line in result.stdout.splitlines()}
    assert lines["setting"] == ["value", "from", "part"]
    assert lines["LAKEBOX_ORDERS_PAGE_SIZE"] == ["250", "env", "pipeline orders"]
    assert lines["LAKEBOX_ORDERS_API_TOKEN"] == ["***", "env", "pipeline orders"]
    assert lines["LAKEBOX_RETAIL_POLICY"] == ["quarantine", "default", "pipeline retail"]
    assert lines["LAKEBOX_ORDERS_API_URL"] == ["(unset)", "unset", "pipeline orders"]
    assert "Sup3rSecret" not in result.stdout + result.stderr


def test_config_shows_every_setting_and_where_it_came_from(lakebox_env: dict[str, str], tmp_path: Path) -> None:
    from lakebox import core_settings

    (tmp_path / "lakebox.toml").write_text('[lakebox]\nhttp_timeout = 9\n[lakebox.orders]\nschedule = "*/5 * * * *"\n')
    result = run_cli("config", "--doc", env={**lakebox_env, "LAKEBOX_HTTP_MAX_ATTEMPTS": "3", "PWD": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["setting", "value", "from", "part", "doc", "allowed", "toml key"]
    lines = {line.split("\t")[0]: line.split("\t") for line in rows}
    assert {d.name for d in core_settings.CORE} <= set(lines)
    assert lines["LAKEBOX_HTTP_MAX_ATTEMPTS"][1:3] == ["3", "env"]
    assert lines["LAKEBOX_HTTP_TIMEOUT"][1:3] == ["9", "lakebox.toml"]
    assert lines["LAKEBOX_HTTP_BACKOFF"][2] == "env"  # the fixture sets it
    assert lines["LAKEBOX_ORDERS_SCHEDULE"][2:4] == ["lakebox.toml", "pipeline orders"]
    assert lines["LAKEBOX_HTTP_MAX_ELAPSED"][1:3] == ["120", "default"]
    assert lines["LAKEBOX_HTTP_MAX_ATTEMPTS"][5:] == ["a whole number >= 1", "http_max_attempts"]


def test_bad_settings_stop_a_run_before_anything_runs_naming_each(lakebox_env: dict[str, str]) -> None:
    env = {**lakebox_env, "LAKEBOX_HTTP_MAX_ATTEMPTS": "abc", "LAKEBOX_RETAIL_POLICY": "bogus"}
    for command in (["run"], ["config"]):
        result = run_cli(*command, env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "LAKEBOX_HTTP_MAX_ATTEMPTS='abc' (from env) is not a whole number" in result.stderr
        assert "LAKEBOX_RETAIL_POLICY='bogus'" in result.stderr and "quarantine, fail-fast" in result.stderr
    assert not (Path(lakebox_env["LAKEBOX_HOME"]) / "warehouse.duckdb").exists(), "nothing ran"


@pytest.mark.parametrize("args", [["status", "--limit", "-1"], ["status", "--limit", "0"],
                                  ["dashboard", "--port", "70000"], ["watch", "--metrics-port", "-5"],
                                  ["worker", "--concurrency", "0"], ["serve", "--dagster-port", "0"],
                                  ["retail-generate", "--stores", "0"], ["who-api", "--countries", "500"],
                                  ["orders-api", "--orders", "-1"], ["github-api", "--repos", "0"],
                                  ["bench", "--sizes", "10k,lots"], ["bench", "--cli-size", "abc"]])
def test_a_number_option_out_of_range_is_a_usage_error(lakebox_env: dict[str, str], args: list[str]) -> None:
    result = run_cli(*args, env=lakebox_env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Invalid value" in result.stderr
    assert args[1] in result.stderr


def test_status_on_a_new_home_says_what_to_do(lakebox_env: dict[str, str]) -> None:
    result = run_cli("status", env=lakebox_env)
    assert result.returncode == 0
    assert "No runs yet" in result.stdout and "lakebox run" in result.stdout


def test_orders_api_rejects_a_bad_fault_spec(lakebox_env: dict[str, str]) -> None:
    result = run_cli("orders-api", "--port", "0", "--fault", "teapot", env=lakebox_env)
    assert result.returncode == 2
    assert "teapot" in result.stderr and "Traceback" not in result.stderr
