import os
import re
import subprocess
from pathlib import Path

import pytest

from lakebox import core_settings
from lakebox.errors import ConfigError
from lakebox.pipelines import discover
from lakebox.pipelines.spec import PipelineSpec, Setting
from lakebox.settings import Settings, redact
from tests.conftest import run_cli

SRC = Path(__file__).resolve().parents[1] / "src" / "lakebox"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
# set by lakebox itself for dbt's profile during a build, never read as a setting
NOT_SETTINGS = {"LAKEBOX_DBT_PASSWORD"}


def test_defaults_live_under_home(tmp_path: Path) -> None:
    s = Settings.load(env={}, cwd=tmp_path)
    assert s.home == tmp_path / ".lakebox"
    assert s.warehouse == str(tmp_path / ".lakebox" / "warehouse.duckdb")
    assert s.lake == str(tmp_path / ".lakebox" / "lake")
    assert s.landing == str(tmp_path / ".lakebox" / "landing")
    assert s.warehouse_kind == "duckdb"


def test_environment_overrides_toml(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('[lakebox]\nhome = "h"\nlake = "s3://bucket/lake"\n')
    s = Settings.load(env={"LAKEBOX_HOME": str(tmp_path / "envhome")}, cwd=tmp_path)
    assert s.home == tmp_path / "envhome"
    assert s.lake == "s3://bucket/lake"


def test_password_in_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('warehouse = "postgresql://app:hunter22@db:5432/x"\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(env={}, cwd=tmp_path)
    assert "secrets come only from the environment" in str(err.value)
    assert "hunter22" not in str(err.value)


def test_unknown_toml_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('wharehouse = "x"\n')
    with pytest.raises(ConfigError, match="wharehouse"):
        Settings.load(env={}, cwd=tmp_path)


def test_postgres_url_selects_postgres_and_is_redacted(tmp_path: Path) -> None:
    env = {"LAKEBOX_WAREHOUSE": "postgresql://app:s3cr3tpw@127.0.0.1:5432/wh"}
    s = Settings.load(env=env, cwd=tmp_path)
    assert s.warehouse_kind == "postgres"
    assert s.describe()["warehouse"] == "postgresql://app:***@127.0.0.1:5432/wh"


def test_unknown_warehouse_scheme_is_a_clear_error_when_settings_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"LAKEBOX_WAREHOUSE": "mysql://u:pw1234@h/db"}, cwd=tmp_path)
    assert "mysql" in str(err.value) and "pw1234" not in str(err.value)


def test_redact_hides_secret_env_values() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": "abcdSECRETxyz", "PGPASSWORD": "pgpass99", "HOME": "/root"}
    text = "key abcdSECRETxyz and pgpass99 at /root and postgresql://u:inline@h/db"
    assert redact(text, env) == "key *** and *** at /root and postgresql://u:***@h/db"


def test_retail_policy_from_toml_or_environment(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('retail_policy = "fail-fast"\n')  # the flat key of before
    assert Settings.load(env={}, cwd=tmp_path).pipeline("retail")["policy"] == "fail-fast"
    env = {"LAKEBOX_RETAIL_POLICY": "quarantine"}
    assert Settings.load(env=env, cwd=tmp_path).pipeline("retail")["policy"] == "quarantine"


def test_pipeline_settings_from_their_table_the_environment_or_the_spec(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text(
        '[lakebox]\nhome = "h"\n\n[lakebox.orders]\napi_url = "http://orders.internal:8000"\npage_size = 500\n'
    )
    orders = Settings.load(env={}, cwd=tmp_path).pipeline("orders")
    assert orders["api_url"] == "http://orders.internal:8000"
    assert orders.integer("page_size") == 500
    assert orders.integer("demo_orders") == 5000, "the spec's default"
    env = {"LAKEBOX_ORDERS_PAGE_SIZE": "300", "LAKEBOX_DEMO_ORDERS": "20"}
    orders = Settings.load(env=env, cwd=tmp_path).pipeline("orders")
    assert (orders.integer("page_size"), orders.integer("demo_orders")) == (300, 20), "the environment wins"


def test_a_pipeline_setting_given_twice_or_unknown_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "lakebox.toml"
    config.write_text('orders_page_size = 10\n[orders]\npage_size = 20\n')
    with pytest.raises(ConfigError, match="given twice"):
        Settings.load(env={}, cwd=tmp_path)
    config.write_text('[lakebox.orders]\npage_sise = 20\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(env={}, cwd=tmp_path)
    assert "[lakebox.orders] page_sise" in str(err.value) and "page_size" in str(err.value)
    config.write_text('[lakebox.ordres]\npage_size = 20\n')
    with pytest.raises(ConfigError, match="ordres"):
        Settings.load(env={}, cwd=tmp_path)


def test_a_pipeline_secret_comes_only_from_the_environment_and_is_never_shown(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('[lakebox.orders]\napi_token = "tok-in-a-file"\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(env={}, cwd=tmp_path)
    assert "LAKEBOX_ORDERS_API_TOKEN" in str(err.value) and "tok-in-a-file" not in str(err.value)
    settings = Settings.load(env={"LAKEBOX_ORDERS_API_TOKEN": "tok-from-env"}, cwd=tmp_path / "elsewhere")
    assert settings.pipeline("orders")["api_token"] == "tok-from-env"
    assert settings.describe()["orders.api_token"] == "***"
    assert "tok-from-env" not in str(settings.describe())


def test_a_bad_number_names_its_variable_when_settings_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"LAKEBOX_ORDERS_PAGE_SIZE='lots' \(from env\) is not a whole number"):
        Settings.load(env={"LAKEBOX_ORDERS_PAGE_SIZE": "lots"}, cwd=tmp_path)


def test_machine_cache_defaults_to_xdg_and_can_be_moved_or_turned_off(tmp_path: Path) -> None:
    assert Settings.load(env={"HOME": "/home/ann"}, cwd=tmp_path).cache_dir == Path("/home/ann/.cache/lakebox")
    assert Settings.load(env={"XDG_CACHE_HOME": "/xdg"}, cwd=tmp_path).cache_dir == Path("/xdg/lakebox")
    assert Settings.load(env={"LAKEBOX_CACHE_DIR": "c"}, cwd=tmp_path).cache_dir == tmp_path / "c"
    off = Settings.load(env={"LAKEBOX_CACHE_DIR": "off"}, cwd=tmp_path)
    assert off.cache_dir is None and off.describe()["cache_dir"] == "off"


def test_bad_settings_are_refused_when_settings_load_all_together_naming_what_each_allows(tmp_path: Path) -> None:
    env = {"LAKEBOX_HTTP_MAX_ATTEMPTS": "0", "LAKEBOX_HTTP_TIMEOUT": "abc", "LAKEBOX_RETAIL_POLICY": "bogus",
           "LAKEBOX_METRICS_PORT": "70000", "LAKEBOX_ORDERS_SCHEDULE": "hourly",
           "LAKEBOX_ALERT_WEBHOOK_URL": "hooks.example/T0SECRET"}
    with pytest.raises(ConfigError) as err:
        Settings.load(env=env, cwd=tmp_path)
    message = str(err.value)
    assert message.startswith("6 setting(s) cannot be used")
    assert "LAKEBOX_HTTP_MAX_ATTEMPTS='0' (from env) is out of range; allowed: a whole number >= 1" in message
    assert "LAKEBOX_HTTP_TIMEOUT='abc' (from env) is not a number; allowed: a number > 0" in message
    assert "LAKEBOX_RETAIL_POLICY='bogus' (from env) is not allowed; allowed: one of quarantine, fail-fast" in message
    assert "LAKEBOX_METRICS_PORT='70000' (from env) is out of range; allowed: a whole number from 0 to 65535" in message
    assert "LAKEBOX_ORDERS_SCHEDULE='hourly'" in message and "cron" in message
    assert "LAKEBOX_ALERT_WEBHOOK_URL=(secret value)" in message and "T0SECRET" not in message


def test_a_bad_url_setting_is_named_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"LAKEBOX_OPS_URL": "mysql://ops:hunter22@db/ops"}, cwd=tmp_path)
    assert "LAKEBOX_OPS_URL='mysql://ops:***@db/ops' (from env) is not an allowed URL" in str(err.value)
    assert "hunter22" not in str(err.value)


def test_a_bad_value_in_lakebox_toml_says_it_came_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('[lakebox]\nhttp_max_attempts = 0\n[lakebox.retail]\npolicy = "bogus"\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(env={}, cwd=tmp_path)
    assert "LAKEBOX_HTTP_MAX_ATTEMPTS='0' (from lakebox.toml, key http_max_attempts) is out of range" in str(err.value)
    assert "LAKEBOX_RETAIL_POLICY='bogus' (from lakebox.toml, key [lakebox.retail] policy)" in str(err.value)


def test_a_core_setting_from_lakebox_toml_reaches_the_code_that_reads_it(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('[lakebox]\nhttp_max_attempts = 2\n[lakebox.orders]\nsla = "2h"\n')
    settings = Settings.load(env={"LAKEBOX_HTTP_TIMEOUT": "7"}, cwd=tmp_path)
    assert core_settings.HTTP_MAX_ATTEMPTS.read(settings.env) == 2
    assert core_settings.HTTP_TIMEOUT.read(settings.env) == 7.0
    assert settings.pipeline("orders")["sla"] == "2h"
    origins = {name: origin for name, _, origin in settings.shown()}
    assert (origins["LAKEBOX_HTTP_MAX_ATTEMPTS"], origins["LAKEBOX_HTTP_TIMEOUT"]) == ("lakebox.toml", "env")
    assert (origins["LAKEBOX_ORDERS_SLA"], origins["LAKEBOX_HTTP_BACKOFF"]) == ("lakebox.toml", "default")
    assert (origins["LAKEBOX_LAKE"], origins["LAKEBOX_RETAIL_SLA"]) == ("default", "unset")


def test_every_lakebox_variable_the_code_reads_is_declared_once() -> None:
    declared = [d.name for d in core_settings.CORE]
    declared += [s.env for spec in discover().values() for s in spec.settings]
    assert len(declared) == len(set(declared)), "declared twice: " + str({n for n in declared if declared.count(n) > 1})
    templates = [re.compile(d.name.replace("<PIPELINE>", "[A-Z0-9_]+") + "$") for d in core_settings.EVERY_PIPELINE.values()]
    mentioned = {m for f in SRC.rglob("*.py") for m in re.findall(r"\bLAKEBOX_[A-Z0-9_]*[A-Z0-9]\b", f.read_text())}
    undeclared = sorted(m for m in mentioned - set(declared) - NOT_SETTINGS if not any(t.match(m) for t in templates))
    assert not undeclared, f"read but not declared in lakebox/core_settings.py or a pipeline's spec: {undeclared}"


def test_every_core_setting_is_in_docs_settings_md_with_its_default() -> None:
    doc = DOCS.read_text()
    for d in (*core_settings.CORE, *core_settings.EVERY_PIPELINE.values()):
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{d.name}` |")), None)
        assert row is not None, f"docs/settings.md has no row for {d.name}"
        if d.default is not None:
            assert f"`{d.default}`" in row, f"docs/settings.md: {d.name}'s default is `{d.default}`"


def test_a_pipeline_may_not_declare_a_key_the_core_reads_for_every_pipeline() -> None:
    spec = PipelineSpec("weather", "d", stages=(), settings=(Setting("sla", None, "mine"),))
    with pytest.raises(ConfigError, match="'sla' is one the core reads for every pipeline"):
        spec.check()


def test_a_bad_settings_file_and_a_bad_variable_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('wharehouse = "x"\n[lakebox.orders]\napi_token = "tok-in-a-file"\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"LAKEBOX_LOKI_BATCH": "many"}, cwd=tmp_path)
    message = str(err.value)
    assert message.startswith("3 setting(s) cannot be used")
    assert "unknown settings ['wharehouse (outside [lakebox])']" in message and "set LAKEBOX_ORDERS_API_TOKEN instead" in message
    assert "LAKEBOX_LOKI_BATCH='many' (from env) is not a whole number" in message
    assert "tok-in-a-file" not in message


# Issue 23.13: each bad setting stops the real CLI before anything runs: exit 2, one line
# naming the setting, where its value came from and what it allows; nothing is created.
BAD_SETTINGS = [
    ({"LAKEBOX_ORDERS_SCHEDULE": "61 * * * *"}, "LAKEBOX_ORDERS_SCHEDULE='61 * * * *' (from env) is not a valid "
     "cron expression (minute field '61': 61 is outside 0-59); allowed: a cron expression of five fields"),
    ({"LAKEBOX_ORDERS_SCHEDULE": "a b c d e"}, "LAKEBOX_ORDERS_SCHEDULE='a b c d e' (from env) is not a valid "
     "cron expression (minute field 'a': 'a' is not a number); allowed: "),
    ({"LAKEBOX_ORDERS_SCHEDULE": "*/0 * * * *"}, "LAKEBOX_ORDERS_SCHEDULE='*/0 * * * *' (from env) is not a valid "
     "cron expression (minute field '*/0': a step of 0 never advances); allowed: "),
    ({"LAKEBOX_RETAIL_SCHEDULE": "0 0 * 13 *"}, "LAKEBOX_RETAIL_SCHEDULE='0 0 * 13 *' (from env) is not a valid "
     "cron expression (month field '13': 13 is outside 1-12); allowed: "),
    ({"LAKEBOX_WHO_INDICATORS": "WHOSIS 1;DROP"}, "LAKEBOX_WHO_INDICATORS='WHOSIS 1;DROP' (from env) is not a list "
     "of GHO indicator codes ('WHOSIS 1;DROP' is not one); allowed: GHO indicator codes ("),
    ({"LAKEBOX_GITHUB_REPOS": "acme"}, "LAKEBOX_GITHUB_REPOS='acme' (from env) is not a list of GitHub "
     "repositories ('acme' is not one); allowed: GitHub repositories (owner/name"),
    ({"LAKEBOX_LAKE": "s3://"}, "LAKEBOX_LAKE='s3://' (from env) is a URL without a bucket; allowed: a folder, "
     "or s3://bucket/prefix"),
    ({"LAKEBOX_LANDING": "gs://drops"}, "LAKEBOX_LANDING='gs://drops' (from env) is a URL of an unsupported scheme "
     "'gs'; allowed: a folder, or s3://bucket/prefix"),
    ({"LAKEBOX_CONFIG": "missing.toml"}, "LAKEBOX_CONFIG='missing.toml' (from env) names no file ("),
]


def _refused_before_anything_ran(result: subprocess.CompletedProcess[str], home: Path, expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert lines[0] == "error: 1 setting(s) cannot be used:", result.stderr
    assert lines[1].startswith(expected), lines[1]
    assert not (home / "warehouse.duckdb").exists() and not (home / "logs").exists(), "something ran"


@pytest.mark.parametrize(("env", "expected"), BAD_SETTINGS, ids=[next(iter(e)) + "=" + next(iter(e.values()))
                                                                 for e, _ in BAD_SETTINGS])
def test_a_bad_setting_stops_the_cli_before_anything_runs(lakebox_env: dict[str, str], env: dict[str, str],
                                                         expected: str) -> None:
    result = run_cli("status", env={**lakebox_env, **env})
    _refused_before_anything_ran(result, Path(lakebox_env["LAKEBOX_HOME"]), expected)


def test_a_bad_schedule_in_lakebox_toml_names_the_file_and_key(lakebox_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('[lakebox.orders]\nschedule = "0 0 30 2 *"\n')
    result = run_cli("status", env={**lakebox_env, "PWD": str(tmp_path)})
    _refused_before_anything_ran(result, Path(lakebox_env["LAKEBOX_HOME"]),
                                 "LAKEBOX_ORDERS_SCHEDULE='0 0 30 2 *' (from lakebox.toml, key [lakebox.orders] "
                                 "schedule) is not a valid cron expression (February has no day 30 or 31)")


def test_a_home_that_is_a_file_or_under_one_is_refused(lakebox_env: dict[str, str], tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("mine\n")
    result = run_cli("status", env={**lakebox_env, "LAKEBOX_HOME": str(a_file)})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"LAKEBOX_HOME='{a_file}' (from env) is a file, not a folder; allowed: a folder lakebox can write in" \
        in result.stderr
    under = a_file / "home"
    result = run_cli("status", env={**lakebox_env, "LAKEBOX_HOME": str(under)})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"LAKEBOX_HOME='{under}' (from env) cannot be created: {a_file} is a file" in result.stderr
    assert a_file.read_text() == "mine\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder, whatever its mode")
def test_an_unwritable_home_is_refused(lakebox_env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "locked"
    home.mkdir(mode=0o555)
    try:
        result = run_cli("status", env={**lakebox_env, "LAKEBOX_HOME": str(home)})
    finally:
        home.chmod(0o755)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"LAKEBOX_HOME='{home}' (from env) is not writable; allowed: a folder lakebox can write in" in result.stderr
    assert list(home.iterdir()) == []


def test_an_out_of_range_status_limit_is_a_usage_error(lakebox_env: dict[str, str]) -> None:
    result = run_cli("status", "--limit", "99999999999999999999", env=lakebox_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Invalid value for '--limit'" in result.stderr and "less than or equal to 1000000" in result.stderr
    assert not (Path(lakebox_env["LAKEBOX_HOME"]) / "warehouse.duckdb").exists()


def test_quarantine_list_of_an_unknown_pipeline_is_a_usage_error(lakebox_env: dict[str, str]) -> None:
    result = run_cli("quarantine", "list", "--pipeline", "nosuch", env=lakebox_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == ("error: --pipeline 'nosuch' (from the command line) is not a pipeline; "
                                     "allowed: github_commits, orders, retail, who_gho")
    assert not (Path(lakebox_env["LAKEBOX_HOME"]) / "warehouse.duckdb").exists()
    known = run_cli("quarantine", "list", "--pipeline", "orders", env=lakebox_env)
    assert known.returncode == 0 and "No open quarantined items." in known.stderr


def test_config_off_reads_no_settings_file(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('[lakebox]\nhttp_max_attempts = 0\n')  # would be refused if read
    settings = Settings.load(env={"LAKEBOX_CONFIG": "off"}, cwd=tmp_path)
    assert core_settings.HTTP_MAX_ATTEMPTS.read(settings.env) == 6
