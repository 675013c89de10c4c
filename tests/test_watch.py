"""`lakebox watch`: runs pipelines as their input arrives, dbt kept warm, readers not locked out."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest

from lakebox.pipelines import get_pipeline
from lakebox.pipelines.retail.generator import build_drop, drop_files
from lakebox.runner import Pipeline, RunOutcome, Stage
from lakebox.settings import Settings
from lakebox.transform import dbt as dbt_runner
from lakebox.watch import _Watched, watch

START = dt.date(2026, 3, 1)


def fingerprinted(values: list[object]) -> Pipeline:
    """A pipeline whose waiting input is whatever `values` holds last."""
    return Pipeline("fake", (Stage("noop", lambda ctx: None),), waiting_input=lambda settings: values[-1])


def test_a_file_pipeline_runs_once_its_input_changed_and_stayed_still() -> None:
    seen: list[object] = ["a"]
    item = _Watched(fingerprinted(seen))
    settings = Settings.load(env={}, cwd=Path("/tmp"))
    assert not item.due(settings, 0, 60)  # first look: maybe still being written
    assert item.due(settings, 0, 60)  # still: run (catches up on what arrived before the watch)
    assert not item.due(settings, 0, 60)  # unchanged since the run
    seen.append("b")
    assert not item.due(settings, 0, 60)  # changed: wait one poll
    seen.append("c")
    assert not item.due(settings, 0, 60)  # changed again (a file still growing)
    assert item.due(settings, 0, 60)  # still: run
    seen.append("a")
    assert not item.due(settings, 0, 60)
    assert item.due(settings, 0, 60), "going back to an earlier listing is a change too"


def test_an_api_pipeline_runs_on_its_schedule() -> None:
    item = _Watched(Pipeline("api", (Stage("noop", lambda ctx: None),)))
    settings = Settings.load(env={}, cwd=Path("/tmp"))
    assert item.due(settings, 100.0, 60)
    assert not item.due(settings, 159.9, 60)
    assert item.due(settings, 160.0, 60)


def drop_into(landing: Path, files: dict[str, bytes]) -> None:
    """As a careful store system does: write aside, then rename into place."""
    for name, data in files.items():
        (landing / f".{name}.part").write_bytes(data)
    for name in files:
        (landing / f".{name}.part").rename(landing / name)


def marts_days(home: Path) -> list[dt.date]:
    """Read as the dashboard does, from another connection: only possible while the watcher
    has the warehouse closed."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute("select distinct date from analytics.store_daily_performance order by 1").fetchall()]


@pytest.mark.slow
def test_watch_takes_each_drop_to_the_marts_and_goes_on_after_a_bad_one(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    landing = home / "landing" / "retail"
    landing.mkdir(parents=True)
    files = drop_files(build_drop(3, 1, 5, START))
    day = lambda n: (START + dt.timedelta(days=n - 1)).isoformat()  # noqa: E731
    drop_into(landing, {k: v for k, v in files.items() if k == "stores.csv" or k[-14:-4] <= day(3)})

    bad_name = f"daily_sales_{day(4)}.csv"
    outcomes: list[RunOutcome] = []
    seen_days: list[list[dt.date]] = []
    parses = []
    real_parse = dbt_runner.parse_project

    def counting_parse(settings: Settings) -> float:
        parses.append(1)
        return real_parse(settings)

    def on_run(outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        seen_days.append(marts_days(home))
        if len(outcomes) == 1:  # the next day arrives, its sales file broken
            day4 = {k: v for k, v in files.items() if k.endswith(f"{day(4)}.csv")}
            day4[bad_name] = day4[bad_name].replace(b"date,", b"day,", 1)
            drop_into(landing, day4)
        elif len(outcomes) == 2:  # the store system sends it again, fixed
            drop_into(landing, {bad_name: files[bad_name]})

    settings = Settings.load()
    dbt_runner.parse_project = counting_parse
    try:
        runs = watch(settings, [get_pipeline("retail")], poll=0.02, max_runs=3, on_run=on_run)
    finally:
        dbt_runner.parse_project = real_parse
    assert runs == 3
    assert [o.status for o in outcomes] == ["success", "partial", "success"]
    assert bad_name in (outcomes[1].error or "") and "quarantine" in (outcomes[1].error or "")
    assert [i.item for i in outcomes[1].quarantined] == [bad_name] and outcomes[2].quarantined == []
    assert seen_days[0][-1].isoformat() == day(3)
    assert seen_days[1] == seen_days[0], "the marts were built without the quarantined sales file"
    assert seen_days[2][-1].isoformat() == day(4)
    assert len(parses) == 1, "dbt is parsed once for the whole watch"


@pytest.mark.slow
def test_the_watch_command_stops_cleanly_on_sigterm(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    landing = home / "landing" / "retail"
    landing.mkdir(parents=True)
    drop_into(landing, drop_files(build_drop(2, 1, 9, START)))
    proc = subprocess.Popen([sys.executable, "-m", "lakebox.cli", "watch", "retail", "--poll", "0.05"],
                            env={**lakebox_env, "LAKEBOX_LOG_LEVEL": "INFO"}, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    events = []
    try:
        for line in proc.stderr:
            if line.startswith("{"):
                events.append(orjson.loads(line))
                if events[-1]["msg"] == "watch run finished":
                    break
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert events[-1]["msg"] == "watch run finished" and events[-1]["status"] == "success", events[-3:]
    assert proc.returncode == 0, rest
    assert '"msg":"watch stopped"' in rest
    assert marts_days(home), "the run the watcher made built the marts"


def test_watch_refuses_nonsense_options(lakebox_env: dict[str, str]) -> None:
    from tests.conftest import run_cli

    result = run_cli("watch", "retail", "--poll", "0", env=lakebox_env)
    assert result.returncode != 0 and "must be positive" in result.stderr
    result = run_cli("watch", "nosuch", "--max-runs", "1", env=lakebox_env)
    assert result.returncode != 0 and "unknown pipeline 'nosuch'" in result.stderr



@pytest.mark.slow
def test_watch_runs_an_api_pipeline_on_its_schedule(lakebox_env: dict[str, str]) -> None:
    from tests.conftest import run_cli

    env = {**lakebox_env, "LAKEBOX_DEMO_ORDERS": "200", "LAKEBOX_LOG_LEVEL": "INFO"}
    result = run_cli("watch", "orders", "--every", "0.05", "--poll", "0.01", "--max-runs", "2", env=env)
    assert result.returncode == 0, result.stderr
    runs = [orjson.loads(line) for line in result.stderr.splitlines()
            if line.startswith("{") and '"watch run finished"' in line]
    assert [(r["pipeline"], r["status"]) for r in runs] == [("orders", "success"), ("orders", "success")]
    assert "nothing loaded since the last build, dbt skipped" in result.stderr  # the second found nothing new
