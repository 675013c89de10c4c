"""`make demo`'s command on a fresh home: every bundled pipeline runs and the user is told
what was built and where to look."""

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_demo_runs_every_pipeline_and_says_where_to_look(lakebox_env: dict[str, str]) -> None:
    env = {**lakebox_env, "LAKEBOX_DEMO_ORDERS": "2000"}
    result = run_cli("demo", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    assert "running orders" in out and "running retail" in out
    assert out.count("success") == 2
    for table in ("analytics.daily_order_metrics", "analytics.store_daily_performance", "analytics.store_insights"):
        assert table in out
    assert "lakebox dashboard" in out and "lakebox status" in out
    again = run_cli("demo", env=env)  # a second demo finds nothing new and still succeeds
    assert again.returncode == 0, again.stderr[-3000:]
