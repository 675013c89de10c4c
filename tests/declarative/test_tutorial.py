"""docs/pipelines.md's tutorial, run as written: its files taken from the page, its commands
run in a project made by `lakebox init`, against `lakebox tutorial-api` on loopback."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli

DOC = Path(__file__).parents[2] / "docs" / "pipelines.md"
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
_FILE_LINE = re.compile(r"^(?:#|--) ((?:pipelines/)?[\w./]+\.(?:toml|sql|yml))$")


def tutorial() -> str:
    text = DOC.read_text()
    start = text.index("## Your first pipeline")
    return text[start:text.index("\n## ", start + 1)]


def tutorial_files() -> dict[str, str]:
    """Every code block of the tutorial whose first line names a file."""
    files = {}
    for _, body in _BLOCK.findall(tutorial()):
        first, _, rest = body.partition("\n")
        if (named := _FILE_LINE.match(first)) is not None:
            files[named.group(1)] = body
    return files


def tutorial_commands() -> list[list[str]]:
    """The lakebox commands of the tutorial's bash blocks, in order, comments left out."""
    commands = []
    for lang, body in _BLOCK.findall(tutorial()):
        if lang != "bash":
            continue
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["lakebox"]:
                commands.append(words)
    return commands


@pytest.fixture(scope="module")
def api_port() -> Iterator[int]:
    """`lakebox tutorial-api` as the tutorial starts it (its port as the tutorial's TOML says)."""
    [port] = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", tutorial())}
    served = subprocess.Popen([sys.executable, "-m", "lakebox.cli", "tutorial-api", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert served.stderr is not None
    line = served.stderr.readline()  # the banner, once it listens
    assert f"127.0.0.1:{port}" in line, line
    yield port
    served.terminate()
    served.wait(timeout=30)
    served.stderr.close()


def test_the_tutorial_runs_as_written(tmp_path: Path, api_port: int) -> None:
    commands = tutorial_commands()
    assert [c[:2] for c in commands] == [
        ["lakebox", "init"], ["lakebox", "tutorial-api"], ["lakebox", "check"], ["lakebox", "run"],
        ["lakebox", "run"], ["lakebox", "status"], ["lakebox", "ml"], ["lakebox", "dashboard"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
    env.update(AIR_API_TOKEN="demo", LAKEBOX_LOG_LEVEL="WARNING")
    project = tmp_path / commands[0][2]
    out = run_cli("init", str(project), env=env)
    assert out.returncode == 0, out.stderr
    for name, body in tutorial_files().items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(body)
    env["LAKEBOX_PROJECT"] = str(project)

    def lakebox(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=env, timeout=600)

    check = lakebox("check")
    assert check.returncode == 0, check.stdout + check.stderr
    first = lakebox("run", "air")
    assert first.returncode == 0, first.stderr[-3000:]
    warehouse = project / ".lakebox" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        raw = con.execute("select count(*), count(distinct city), min(wind_speed) >= 0 from raw.air_readings").fetchone()
        daily = con.execute("select count(*), sum(readings) from analytics.air_daily").fetchone()
        scored = con.execute("select count(*), min(model_name), count(distinct model_version) "
                         "from ml.air_pm25_forecast_predictions").fetchone()
    assert raw == (4320, 3, True)  # 60 days x 24 hours x 3 cities, "Wind Speed" as wind_speed
    assert daily == (180, 4320)
    assert scored is not None and scored[0] > 0 and scored[1] == "air-pm25-forecast" and scored[2] == 1

    again = lakebox("run", "air")  # incremental: nothing newer than the last reading
    assert again.returncode == 0, again.stderr[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.air_readings").fetchone() == (4320,)
        runs = con.execute("select status, rows_in from ops.pipeline_runs where pipeline = 'air' order by started_at"
                       ).fetchall()
    assert [r[0] for r in runs] == ["success", "success"]

    models = lakebox("ml", "models", "air", "--json")
    assert models.returncode == 0, models.stderr
    assert "air-pm25-forecast" in models.stdout and "champion" in models.stdout
