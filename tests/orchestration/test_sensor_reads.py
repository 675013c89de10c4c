"""A sensor of `lakebox serve` reads the DuckDB warehouse for a moment (DuckDB lets one
process write or several read); when that moment is the one a run's dbt build opens the
file, the run waits it out instead of failing its transform stage (a backfill run of
retail once failed so in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lakebox.settings import Settings
from lakebox.transform.dbt import run_dbt
from lakebox.warehouse import open_warehouse
from tests.orchestration.conftest import drop_days

pytestmark = pytest.mark.slow

# A reader as the sensors are (read-only, a query) that lets go once a writer was refused:
# DuckDB opens the file for writing, fails to lock it and closes it (inotify IN_CLOSE_WRITE).
_READER = r"""
import ctypes, os, select, sys
import duckdb

path = sys.argv[1]
con = duckdb.connect(path, read_only=True)
con.execute("select count(*) from information_schema.tables").fetchall()
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_init1(os.O_CLOEXEC)
assert watch >= 0 and libc.inotify_add_watch(watch, path.encode(), 0x08) >= 0, ctypes.get_errno()  # IN_CLOSE_WRITE
print("holding", flush=True)
opened = select.select([watch], [], [], 120)[0]
con.close()
print("let go after a writer was refused" if opened else "no writer came", flush=True)
"""


def test_a_dbt_build_waits_out_a_reader_holding_the_warehouse(lakebox_env: dict[str, str],
                                                             generated_drop: Path) -> None:
    from lakebox.lake import Lake
    from lakebox.pipelines import discover
    from lakebox.runner import run_pipeline

    home = Path(lakebox_env["LAKEBOX_HOME"])
    drop_days(generated_drop, home / "landing" / "retail", "2025-03-04")
    settings = Settings.load()
    with open_warehouse(settings) as warehouse:
        first = run_pipeline(discover()["retail"].pipeline(), settings, Lake.from_settings(settings), warehouse)
        assert first.status == "success", first.error
        warehouse.release()  # as run_dbt does: dbt opens the file itself
        reader = subprocess.Popen([sys.executable, "-c", _READER, str(home / "warehouse.duckdb")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert reader.stdout is not None and reader.stderr is not None
            assert reader.stdout.readline().strip() == "holding", reader.stderr.read()
            outcome = run_dbt(settings, warehouse, ["path:models/retail"])
            said, errors = reader.communicate(timeout=60)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.communicate()
    assert said.strip() == "let go after a writer was refused", errors  # dbt came while the reader held the file
    assert outcome.models > 0
