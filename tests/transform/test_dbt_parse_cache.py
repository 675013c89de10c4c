"""dbt's parse of the bundled project is shared across homes through the machine cache."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli

ORDERS = "200"


def run_orders(tmp_path: Path, name: str, cache: str) -> tuple[Path, str]:
    home = tmp_path / name
    env = {**__import__("os").environ, "LAKEBOX_HOME": str(home), "LAKEBOX_CACHE_DIR": cache,
           "LAKEBOX_DEMO_ORDERS": ORDERS, "LAKEBOX_DBT_LOG_LEVEL": "debug"}
    env.pop("LAKEBOX_ORDERS_API_URL", None)
    result = run_cli("run", "orders", env=env)
    assert result.returncode == 0, result.stderr
    return home, (home / "dbt" / "logs" / "dbt.log").read_text()


def marts(home: Path) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("select order_date, total_orders, total_amount, unique_customers, cancelled_orders, refunded_amount "
                           "from analytics.daily_order_metrics order by order_date").fetchall()
    finally:
        con.close()


def cached_parses(cache: Path) -> list[Path]:
    return sorted((cache / "dbt-parse").glob("*.msgpack"))


def test_a_new_home_starts_from_the_machines_parse(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, first_log = run_orders(tmp_path, "first", str(cache))
    assert "Unable to do partial parsing" in first_log or "Partial parsing not enabled" in first_log \
        or "Partial parse save file not found" in first_log
    [parse] = cached_parses(cache)
    assert parse.stat().st_size > 0
    profile = (first / "dbt" / "profiles.yml").read_text()
    assert str(first) not in profile, "the profile must not name the home, or no other home could reuse the parse"

    second, second_log = run_orders(tmp_path, "second", str(cache))
    assert "Partial parse save file not found" not in second_log
    assert "Unable to do partial parsing" not in second_log
    assert "skipping parsing" in second_log or "Partial parsing enabled" in second_log
    assert marts(second) == marts(first) and len(marts(first)) > 0


def test_a_corrupt_cached_parse_costs_a_parse_not_a_wrong_build(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, _ = run_orders(tmp_path, "first", str(cache))
    [parse] = cached_parses(cache)
    parse.write_bytes(b"not a msgpack manifest")
    second, log = run_orders(tmp_path, "second", str(cache))
    assert marts(second) == marts(first)
    assert parse.read_bytes() != b"not a msgpack manifest", "the cache is repaired by the new parse"


@pytest.mark.parametrize("off", ["off", "none"])
def test_the_cache_can_be_turned_off(tmp_path: Path, off: str) -> None:
    home, _ = run_orders(tmp_path, "home", off)
    assert (home / "dbt" / "target" / "partial_parse.msgpack").exists()
    assert not (tmp_path / off).exists() and not list(tmp_path.glob("**/dbt-parse"))
