"""`make demo`'s command on a fresh home: every pipeline runs, fed offline as its spec says,
and the user is told what was built and where to look."""

import re
from pathlib import Path

import duckdb
import httpx
import pytest

from lakebox.demo import lakebox_command, shown_path
from lakebox.pipelines import get_spec
from lakebox.settings import Settings
from tests.conftest import run_cli
from tests.terminal import run_in_terminal


@pytest.mark.slow
def test_demo_runs_every_pipeline_and_says_where_to_look(lakebox_env: dict[str, str], tmp_path: Path) -> None:
    # a configured API that is not there: the demo feeds orders from the bundled one anyway
    elsewhere = tmp_path / "elsewhere"  # run from a folder that is not the project's
    elsewhere.mkdir()
    env = {**lakebox_env, "LAKEBOX_DEMO_ORDERS": "2000", "LAKEBOX_ORDERS_API_URL": "http://127.0.0.1:9",
           "PWD": str(elsewhere)}
    code, out = run_in_terminal("demo", env=env, columns=100, timeout=600)
    assert code == 0, out[-3000:]
    from lakebox.pipelines import discover

    for name in discover():
        assert f"running {name}" in out
    assert "bundled orders API on http://127.0.0.1:" in out and "2,000 orders" in out
    assert '{"ts"' not in out and "INFO mlflow" not in out, "no JSON or MLflow info lines on the terminal"
    home = Path(lakebox_env["LAKEBOX_HOME"])
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        marts = sum(con.execute(f"select count(*) from {t}").fetchone()[0] for t in get_spec("github_commits").marts)
        drifted = con.execute("select count(*) filter (where drifted), count(*) from ml.drift_report "
                              "where model_name = 'commit-classifier'").fetchone()
    [line] = [ln for ln in out.splitlines() if "rows in its marts: analytics.commit_activity" in ln]
    assert f"; {marts:,} rows in its marts" in line, "the marts' rows, not the drift stage's count"
    if drifted[0]:  # the bundled data's newest window is one repository's: said in words
        assert f"drift: model commit-classifier: {drifted[0]} of {drifted[1]} features differ" in out
        assert re.search(r"all [\d,]+ commits in that window come from \S+", out), out
    for table in ("analytics.daily_order_metrics", "analytics.store_daily_performance", "analytics.store_insights",
                  "analytics.commit_activity", "analytics.life_expectancy_by_country_year",
                  "ml.commit_predictions", "ml.drift_report"):
        assert table in out
    [hint] = [ln for ln in out.splitlines() if ln.startswith("next ")]
    command = hint.split()[1]
    assert command.endswith("lakebox") and (elsewhere / command).exists(), f"{command} from {elsewhere}"
    again = run_cli("demo", env=env)  # a second demo finds nothing new and still succeeds; piped: plain lines
    assert again.returncode == 0, again.stderr[-3000:]
    assert "\nml.commit_predictions\t" in again.stderr


def test_paths_are_shown_so_they_work_from_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin").mkdir()
    assert shown_path(tmp_path / "bin" / "lakebox") == "bin/lakebox"
    assert shown_path(tmp_path / "lakebox") == "./lakebox"
    assert shown_path(Path("/usr/bin/env")) == "/usr/bin/env"
    assert Path(lakebox_command()).is_absolute() or (tmp_path / lakebox_command()).exists() \
        or lakebox_command() == "lakebox"


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
