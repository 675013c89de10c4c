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


def test_a_new_home_of_an_unchanged_project_pays_no_full_parse(tmp_path: Path) -> None:
    """A project's files are part of the cache key: a new home of the same project starts
    warm, and an edited model gets a parse (and a cache entry) of its own."""
    import os

    from lakebox.project import init_project

    project = tmp_path / "project"
    init_project(project)
    cache = tmp_path / "cache"

    def run_in(home: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
        env.update(LAKEBOX_HOME=str(tmp_path / home), LAKEBOX_CACHE_DIR=str(cache), LAKEBOX_DBT_LOG_LEVEL="debug",
                   PWD=str(project))
        result = run_cli("run", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return (tmp_path / home / "dbt" / "logs" / "dbt.log").read_text()

    first_log = run_in("first")
    assert "Partial parse save file not found" in first_log or "Unable to do partial parsing" in first_log
    [parse] = cached_parses(cache)
    second_log = run_in("second")
    assert "Partial parse save file not found" not in second_log and "Unable to do partial parsing" not in second_log
    assert cached_parses(cache) == [parse]

    mart = project / "pipelines" / "weather" / "models" / "marts" / "weather_daily.sql"
    mart.write_text(mart.read_text().replace("count(*) as readings", "count(*) as readings, 1 as edited"))
    run_in("third")
    assert len(cached_parses(cache)) == 2, "the edited project is cached beside the unchanged one"
