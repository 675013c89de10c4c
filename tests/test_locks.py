"""One run of a pipeline, and one watcher, at a time per home."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from lakebox.errors import BusyError
from lakebox.locks import exclusive
from tests.conftest import run_cli


def test_a_held_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    with exclusive(tmp_path, "run-retail", "pipeline retail"):
        with pytest.raises(BusyError, match=rf"pipeline retail is already running .*pid {os.getpid()}"):
            with exclusive(tmp_path, "run-retail", "pipeline retail"):
                pass
        with exclusive(tmp_path, "run-orders", "pipeline orders"):  # another pipeline is free
            pass
    with exclusive(tmp_path, "run-retail", "pipeline retail"):  # free again
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from lakebox.locks import exclusive\n"
            f"with exclusive(Path({str(tmp_path)!r}), 'run-retail', 'pipeline retail'):\n"
            "    print('locked', flush=True); sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(BusyError):
            with exclusive(tmp_path, "run-retail", "pipeline retail"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()  # reaps it and closes its pipes
    with exclusive(tmp_path, "run-retail", "pipeline retail"):
        pass


def test_a_second_run_of_a_running_pipeline_is_refused_and_records_nothing(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    gen = run_cli("retail-generate", "--stores", "2", "--months", "1", "--seed", "2", "--start", "2026-04-01",
                  env=lakebox_env)
    assert gen.returncode == 0, gen.stderr
    with exclusive(home, "run-retail", "pipeline retail"):  # as a run in another process holds it
        busy = run_cli("run", "retail", env=lakebox_env)
    assert busy.returncode == 3
    assert "pipeline retail is already running in another process" in busy.stderr
    assert not (home / "warehouse.duckdb").exists() or _runs(home) == []
    done = run_cli("run", "retail", env=lakebox_env)
    assert done.returncode == 0, done.stderr
    assert [status for (status,) in _runs(home)] == ["success"]


def _runs(home: Path) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select status from ops.pipeline_runs where pipeline = 'retail'").fetchall()


def test_a_second_watcher_on_a_home_is_refused(lakebox_env: dict[str, str]) -> None:
    from lakebox.pipelines import get_pipeline
    from lakebox.settings import Settings
    from lakebox.watch import watch

    settings = Settings.load()
    with exclusive(settings.home, "watch", "lakebox watch"):
        with pytest.raises(BusyError, match="lakebox watch is already running"):
            watch(settings, [get_pipeline("retail")], max_runs=1)
