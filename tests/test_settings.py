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


def test_a_bad_number_names_its_variable(tmp_path: Path) -> None:
    orders = Settings.load(env={"LAKEBOX_ORDERS_PAGE_SIZE": "lots"}, cwd=tmp_path).pipeline("orders")
    with pytest.raises(ConfigError, match="LAKEBOX_ORDERS_PAGE_SIZE='lots' is not a whole number"):
        orders.integer("page_size")


def test_machine_cache_defaults_to_xdg_and_can_be_moved_or_turned_off(tmp_path: Path) -> None:
    assert Settings.load(env={"HOME": "/home/ann"}, cwd=tmp_path).cache_dir == Path("/home/ann/.cache/lakebox")
    assert Settings.load(env={"XDG_CACHE_HOME": "/xdg"}, cwd=tmp_path).cache_dir == Path("/xdg/lakebox")
    assert Settings.load(env={"LAKEBOX_CACHE_DIR": "c"}, cwd=tmp_path).cache_dir == tmp_path / "c"
    off = Settings.load(env={"LAKEBOX_CACHE_DIR": "off"}, cwd=tmp_path)
    assert off.cache_dir is None and off.describe()["cache_dir"] == "off"
