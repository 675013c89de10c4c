from pathlib import Path

import pytest

from lakebox.errors import ConfigError
from lakebox.settings import Settings, redact


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


def test_unknown_warehouse_scheme_is_a_clear_error(tmp_path: Path) -> None:
    s = Settings.load(env={"LAKEBOX_WAREHOUSE": "mysql://u:pw1234@h/db"}, cwd=tmp_path)
    with pytest.raises(ConfigError) as err:
        _ = s.warehouse_kind
    assert "mysql" in str(err.value) and "pw1234" not in str(err.value)


def test_redact_hides_secret_env_values() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": "abcdSECRETxyz", "PGPASSWORD": "pgpass99", "HOME": "/root"}
    text = "key abcdSECRETxyz and pgpass99 at /root and postgresql://u:inline@h/db"
    assert redact(text, env) == "key *** and *** at /root and postgresql://u:***@h/db"


def test_retail_policy_from_toml_or_environment(tmp_path: Path) -> None:
    (tmp_path / "lakebox.toml").write_text('retail_policy = "fail-fast"\n')
    assert Settings.load(env={}, cwd=tmp_path).retail_policy == "fail-fast"
    assert Settings.load(env={"LAKEBOX_RETAIL_POLICY": "quarantine"}, cwd=tmp_path).retail_policy == "quarantine"


def test_machine_cache_defaults_to_xdg_and_can_be_moved_or_turned_off(tmp_path: Path) -> None:
    assert Settings.load(env={"HOME": "/home/ann"}, cwd=tmp_path).cache_dir == Path("/home/ann/.cache/lakebox")
    assert Settings.load(env={"XDG_CACHE_HOME": "/xdg"}, cwd=tmp_path).cache_dir == Path("/xdg/lakebox")
    assert Settings.load(env={"LAKEBOX_CACHE_DIR": "c"}, cwd=tmp_path).cache_dir == tmp_path / "c"
    off = Settings.load(env={"LAKEBOX_CACHE_DIR": "off"}, cwd=tmp_path)
    assert off.cache_dir is None and off.describe()["cache_dir"] == "off"
