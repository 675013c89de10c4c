"""A project of one's own: `lakebox init`, finding the project, its pipelines beside the
bundled ones, a project model on a bundled mart, and broken projects refused before
anything runs. Each run is the real CLI in a fresh process, in a folder outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg
import pytest

from lakebox.errors import ConfigError
from lakebox.project import PROJECT_ENV, find_project, take_project_option
from lakebox.settings import Settings
from tests.conftest import _LAKEBOX_VARS, run_cli

MINE_INIT = '''
from lakebox.pipelines.spec import SNAPSHOT, TRANSFORM, PipelineSpec, StageSpec

SPEC = PipelineSpec(
    name="mine",
    description="weekly orders, on the bundled daily_order_metrics",
    stages=(StageSpec("ready", ".stages:ready"), TRANSFORM, SNAPSHOT),
    dbt_selector="path:models/mine",
    marts=("analytics.weekly_orders",),
    sources=("orders",),
)
'''
MINE_STAGES = '''
from lakebox.runner import RunContext, StageResult


def ready(ctx: RunContext) -> StageResult:
    return StageResult(rows_in=0, rows_out=0)
'''
WEEKLY = '''
select sum(total_orders) as total_orders, sum(total_amount) as total_amount, count(*) as days
from {{ ref('daily_order_metrics') }}
'''


def project_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a user in `folder`: no LAKEBOX_HOME or warehouse of the test session."""
    env = {k: v for k, v in os.environ.items() if k not in _LAKEBOX_VARS and k != "LAKEBOX_PIPELINES_PATH"}
    return {**env, "PWD": str(folder), "LAKEBOX_HTTP_BACKOFF": "0.01", "LAKEBOX_HTTP_MAX_DELAY": "0.2", **extra}


def write_project(folder: Path, toml: str = "", pipelines: dict[str, dict[str, str]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lakebox.toml").write_text(toml)
    for name, files in (pipelines or {}).items():
        for relative, text in files.items():
            path = folder / "pipelines" / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return folder


MINE = {"__init__.py": MINE_INIT, "stages.py": MINE_STAGES, "models/marts/weekly_orders.sql": WEEKLY}


# ------------------------------------------------------------------ init, run, status
DASHBOARD_PROBE = """
from streamlit.testing.v1 import AppTest
from lakebox.dashboard import APP
at = AppTest.from_file(str(APP), default_timeout=120)
at.run()  # "/" switches to the opening page, which AppTest does not follow: open Platform by name
at.switch_page("platform_page.py").run()
assert not at.exception, [e.value for e in at.exception]
runs = next(d.value for d in at.dataframe if "Pipeline" in d.value.columns)
print("PAGE", at.title[0].value, f"runs={sorted(set(runs['Pipeline']))}")
"""

@pytest.mark.slow
def test_init_then_run_runs_the_example_offline(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    made = run_cli("init", str(folder), env=project_env(tmp_path))
    assert made.returncode == 0, made.stderr
    assert (folder / ".gitignore").read_text().startswith(".lakebox/")
    assert "lakebox run" in (folder / "README.md").read_text()
    assert not str(folder).startswith(str(Path(__file__).parents[1]))

    inside = folder / "pipelines" / "weather" / "models"  # run from a folder below the project
    run = run_cli("run", env=project_env(inside))
    assert run.returncode == 0, run.stderr[-3000:]
    warehouse = folder / ".lakebox" / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        runs = con.execute("select pipeline, status from ops.pipeline_runs").fetchall()
        daily = con.execute("select station, sum(readings) from analytics.weather_daily group by 1 order by 1").fetchall()
    finally:
        con.close()
    assert runs == [("weather", "success")]
    assert daily == [("lisbon", 12), ("porto", 12)]
    status = run_cli("status", env=project_env(folder))
    assert status.returncode == 0 and "weather" in status.stdout + status.stderr
    page = subprocess.run([sys.executable, "-c", DASHBOARD_PROBE], env=project_env(folder), cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert page.returncode == 0, page.stderr[-3000:]
    assert "PAGE Platform runs=['weather']" in page.stdout, page.stdout[-2000:]
    again = run_cli("init", str(folder), env=project_env(tmp_path))
    assert again.returncode == 2 and "lakebox project already" in again.stderr


# ------------------------------------------------------------------ finding the project
def test_the_nearest_lakebox_toml_is_the_project_and_its_home_is_inside(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", '[lakebox]\npipelines = ["orders"]\nlake = "data/lake"\n')
    below = project / "a" / "b"
    below.mkdir(parents=True)
    found = find_project({}, below)
    assert found is not None and found.root == project and found.enabled == ("orders",)
    settings = Settings.load({"HOME": str(tmp_path)}, cwd=below)
    assert settings.home == project / ".lakebox"
    assert settings.lake == str(project / "data" / "lake")
    assert find_project({}, tmp_path) is None
    assert Settings.load({"HOME": str(tmp_path)}, cwd=tmp_path).home == tmp_path / ".lakebox"  # as before


def test_lakebox_project_and_the_option_name_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = write_project(tmp_path / "proj")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_project({PROJECT_ENV: str(project)}, elsewhere).root == project  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="has no lakebox.toml; create a project there with `lakebox init"):
        find_project({PROJECT_ENV: str(elsewhere)}, tmp_path)
    monkeypatch.setenv(PROJECT_ENV, "")  # restored (removed) after the test, whatever sets it here
    monkeypatch.delenv(PROJECT_ENV)
    take_project_option(["run", "--project", "x"])  # after the command: the command's own
    assert PROJECT_ENV not in os.environ
    monkeypatch.chdir(tmp_path)
    take_project_option(["--project", "proj", "run"])
    assert os.environ[PROJECT_ENV] == str(project)
    take_project_option([f"--project={elsewhere}", "status"])
    assert os.environ[PROJECT_ENV] == str(elsewhere)


def test_the_project_option_works_from_anywhere(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", '[lakebox]\npipelines = ["mine"]\n', {"mine": MINE})
    shown = run_cli("--project", str(project), "config", env=project_env(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert str(project / ".lakebox") in shown.stdout and "\tpipeline mine\n" in shown.stdout
    assert "\tpipeline orders\n" not in shown.stdout, "pipelines = [...] switched the bundled ones off"


# ------------------------------------------------------------------ a project model on a bundled mart
def _run_mine(tmp_path: Path, **extra: str) -> Path:
    project = write_project(tmp_path / "proj", '[lakebox]\npipelines = ["orders", "mine"]\n', {"mine": MINE})
    run = run_cli("run", "orders", "mine", env=project_env(project, LAKEBOX_DEMO_ORDERS="300", **extra))
    assert run.returncode == 0, run.stderr[-3000:]
    return project


WEEKLY_CHECK = ("select w.total_orders, w.days, (select sum(total_orders) from analytics.daily_order_metrics), "
                "(select count(*) from analytics.daily_order_metrics) from analytics.weekly_orders w")


@pytest.mark.slow
def test_a_project_model_refs_a_bundled_mart_on_duckdb(tmp_path: Path) -> None:
    project = _run_mine(tmp_path)
    con = duckdb.connect(str(project / ".lakebox" / "warehouse.duckdb"), read_only=True)
    try:
        [(orders, days, expected_orders, expected_days)] = con.execute(WEEKLY_CHECK).fetchall()
        runs = con.execute("select pipeline, status from ops.pipeline_runs order by pipeline").fetchall()
    finally:
        con.close()
    assert orders == expected_orders == 300 and days == expected_days > 0
    assert runs == [("mine", "success"), ("orders", "success")]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_project_model_refs_a_bundled_mart_on_postgres(tmp_path: Path, pg_url: str) -> None:
    _run_mine(tmp_path, LAKEBOX_WAREHOUSE=pg_url)
    with psycopg.connect(pg_url) as con:
        [(orders, days, expected_orders, expected_days)] = con.execute(WEEKLY_CHECK).fetchall()
    assert orders == expected_orders == 300 and days == expected_days > 0


# ------------------------------------------------------------------ broken projects
BROKEN = {
    "import error": ({"mine": {**MINE, "__init__.py": "import not_a_module_anywhere\n" + MINE_INIT}}, "",
                     ["pipelines/mine cannot be imported", "ModuleNotFoundError", "fix its __init__.py"]),
    "missing function": ({"mine": {**MINE, "stages.py": "\n"}}, "",
                         ["pipeline 'mine'", "'.stages:ready' cannot be loaded"]),
    "model does not compile": ({"mine": {**MINE, "models/marts/weekly_orders.sql": "select * from {{ ref('nope') }}"}},
                               "", ["pipelines/mine/models/marts/weekly_orders.sql", "nope", "nothing ran"]),
    "two pipelines of one name": ({"orders": {**MINE, "__init__.py": MINE_INIT.replace('"mine"', '"orders"')}}, "",
                                  ["pipelines/orders has the name of", "rename one of them"]),
    "a missing pipeline named": ({"mine": MINE}, '[lakebox]\npipelines = ["mine", "nosuch"]\n',
                                 ["lakebox.toml: pipelines names 'nosuch'", "fix the list"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_project_is_refused_before_anything_runs(tmp_path: Path, case: str) -> None:
    pipelines, toml, said = BROKEN[case]
    project = write_project(tmp_path / "proj", toml, pipelines)
    run = run_cli("run", env=project_env(project, LAKEBOX_DEMO_ORDERS="50"))
    assert run.returncode == 2, run.stderr[-3000:]
    for words in said:
        assert words in run.stderr, (words, run.stderr[-3000:])
    assert "Traceback" not in run.stderr
    warehouse = project / ".lakebox" / "warehouse.duckdb"
    if warehouse.exists():
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            ran = con.execute("select count(*) from information_schema.tables where table_schema = 'ops'").fetchall()
        finally:
            con.close()
        assert ran == [(0,)], "nothing ran"


@pytest.mark.slow
def test_check_lists_every_problem_at_once(tmp_path: Path) -> None:
    broken_import = {**MINE, "__init__.py": "import not_a_module_anywhere\n" + MINE_INIT.replace('"mine"', '"one"')}
    nameless = {**MINE, "__init__.py": "X = 1\n"}
    project = write_project(tmp_path / "proj", "", {"one": broken_import, "two": nameless})
    result = run_cli("--project", str(project), "check", env=project_env(tmp_path))
    assert result.returncode == 2
    assert "2 problem(s)" in result.stderr
    assert "pipelines/one cannot be imported" in result.stderr
    assert "pipelines/two: its __init__.py declares no SPEC" in result.stderr

    fixed = write_project(tmp_path / "fixed", '[lakebox]\nlog_level = "LOUD"\n', {
        "mine": {**MINE, "stages.py": "\n", "models/marts/weekly_orders.sql": "select * from {{ ref('nope') }}"}})
    result = run_cli("check", env=project_env(fixed))
    assert result.returncode == 2, result.stderr
    assert "'.stages:ready' cannot be loaded" in result.stderr
    assert "LAKEBOX_LOG_LEVEL='LOUD'" in result.stderr

    good = write_project(tmp_path / "good", "", {"mine": {**MINE, "models/marts/weekly_orders.sql":
                                                          "select * from {{ ref('nope') }}"}})
    result = run_cli("check", env=project_env(good))
    assert result.returncode == 2 and "nope" in result.stderr
    assert str(good / "pipelines" / "mine" / "models") in result.stderr, result.stderr[-2000:]
    weekly = good / "pipelines" / "mine" / "models" / "marts" / "weekly_orders.sql"
    weekly.write_text(WEEKLY.replace("select", "selec", 1))  # compiles (dbt never reads the SQL), cannot run
    result = run_cli("check", env=project_env(good))
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{weekly}: the SQL does not parse (duckdb)" in result.stderr, result.stderr[-2000:]
    weekly.write_text(WEEKLY)
    result = run_cli("check", env=project_env(good))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok:" in result.stdout
    assert (good / ".lakebox" / "dbt" / "checked.signature").is_file()  # the next check, with nothing changed, skips dbt
    weekly.write_text(WEEKLY.replace("select", "selec", 1))
    result = run_cli("check", env=project_env(good))
    assert result.returncode == 2 and "does not parse" in result.stderr  # a changed model is checked again


def test_help_imports_nothing_heavy_with_a_project_of_20_pipelines(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", "", {
        f"p{i:02d}": {"__init__.py": MINE_INIT.replace('"mine"', f'"p{i:02d}"').replace("models/mine", f"models/p{i:02d}")}
        for i in range(20)})
    probe = ("import runpy, sys\nsys.argv = ['lakebox', '--help']\ntry:\n    runpy.run_module('lakebox.cli', "
             "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('LOADED', sorted(m for m in ('dbt', 'duckdb', "
             "'dagster', 'mlflow', 'pandas', 'streamlit', 'httpx') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], env=project_env(project), cwd=project,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout[-500:]


@pytest.mark.slow
def test_serve_shows_a_project_pipeline_as_dagster_assets(tmp_path: Path) -> None:
    """`lakebox serve` loads lakebox.orchestration.dagster in its own processes: from the
    project folder (or LAKEBOX_PROJECT, which the CLI pins for them) it sees the project."""
    project = write_project(tmp_path / "proj", '[lakebox]\npipelines = ["mine", "orders"]\n', {"mine": MINE})
    probe = ("from lakebox.orchestration.dagster import defs\n"
             "print('ASSETS', sorted(k.to_user_string() for k in defs.resolve_all_asset_keys()))\n")
    result = subprocess.run([sys.executable, "-c", probe], env=project_env(project), cwd=project,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'analytics/weekly_orders'" in result.stdout and "'analytics/daily_order_metrics'" in result.stdout
    assert "retail" not in result.stdout, "pipelines = [...] switched retail off"
