"""`make demo`'s command on a fresh home: every pipeline runs, fed offline as its spec says,
and the user is told what was built and where to look."""

from pathlib import Path

import httpx
import pytest

from lakebox.pipelines import get_spec
from lakebox.settings import Settings
from tests.conftest import run_cli


@pytest.mark.slow
def test_demo_runs_every_pipeline_and_says_where_to_look(lakebox_env: dict[str, str]) -> None:
    # a configured API that is not there: the demo feeds orders from the bundled one anyway
    env = {**lakebox_env, "LAKEBOX_DEMO_ORDERS": "2000", "LAKEBOX_ORDERS_API_URL": "http://127.0.0.1:9"}
    result = run_cli("demo", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    from lakebox.pipelines import discover

    for name in discover():
        assert f"running {name}" in out
    assert "bundled orders API on http://127.0.0.1:" in out and "2,000 orders" in out
    assert out.count("success") == len(discover()), out
    for table in ("analytics.daily_order_metrics", "analytics.store_daily_performance", "analytics.store_insights",
                  "analytics.commit_activity", "analytics.life_expectancy_by_country_year"):
        assert table in out
    assert "lakebox dashboard" in out and "lakebox status" in out
    again = run_cli("demo", env=env)  # a second demo finds nothing new and still succeeds
    assert again.returncode == 0, again.stderr[-3000:]


def test_the_orders_feed_serves_the_bundled_api_for_the_run_only(tmp_path: Path) -> None:
    settings = Settings.load(env={"LAKEBOX_DEMO_ORDERS": "40", "LAKEBOX_ORDERS_API_URL": "http://127.0.0.1:9"},
                             cwd=tmp_path)
    with get_spec("orders").demo_input(settings) as fed:
        url = fed.settings["api_url"]
        assert url != "http://127.0.0.1:9" and "40 orders" in fed.note
        page = httpx.get(f"{url}/v1/orders", params={"limit": 100}).json()
        assert len(page["records"]) == 40
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/orders", timeout=2)


def test_the_retail_feed_leaves_a_landing_folder_that_holds_files_alone(tmp_path: Path) -> None:
    landing = tmp_path / ".lakebox" / "landing" / "retail"
    landing.mkdir(parents=True)
    (landing / "stores.csv").write_text("store_id\n1\n")
    with get_spec("retail").demo_input(Settings.load(env={}, cwd=tmp_path)) as fed:
        assert fed.note == "" and not fed.settings
    assert [p.name for p in landing.iterdir()] == ["stores.csv"]
