"""Staged batch files on a Spark warehouse: a failed load deletes what it staged; files a
SIGKILLed load left are removed by the next writer that opens the warehouse, and files
of a process still loading are not.

The loader's Parquet writing, staging and sweeping need no JVM: the table's folder and
columns (what `_layout` asks Spark for) are given here, so these run without a cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakebox.errors import WarehouseError
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse, ops
from lakebox.warehouse.spark import SparkWarehouse
from lakebox.warehouse.spark_staging import STAGING, StagingArea

SCHEMA = pa.schema([("batch_id", pa.string()), ("n", pa.int64())])
TARGET = "raw.events"


def _settings(home: Path) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
    return Settings.load(env={**env, "LAKEBOX_HOME": str(home), "LAKEBOX_WAREHOUSE": "spark+local://[1]"}, cwd=home)


def _table_dir(home: Path) -> Path:
    return home / "spark-warehouse" / "raw.db" / "events"


def _without_spark(wh: SparkWarehouse, home: Path) -> SparkWarehouse:
    """The warehouse with its one Spark lookup (table folder and columns) answered here."""
    folder = _table_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    wh._layouts[TARGET] = (folder, SCHEMA)
    return wh


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SparkWarehouse]:
    monkeypatch.setattr(SparkWarehouse, "spark", property(lambda self: _NoSpark()))
    with open_warehouse(_settings(tmp_path)) as wh:
        assert isinstance(wh, SparkWarehouse)
        yield _without_spark(wh, tmp_path)


class _NoSpark:
    """Stands in for the session where the loader only refreshes Spark's listing."""

    class catalog:
        @staticmethod
        def refreshTable(name: str) -> None:
            pass


def staged(home: Path) -> list[Path]:
    return sorted((_table_dir(home) / STAGING).glob("*"))


def published(home: Path) -> list[str]:
    return sorted(p.name for p in _table_dir(home).glob("*.parquet"))


def test_a_load_publishes_its_file_and_leaves_nothing_staged(warehouse: SparkWarehouse, tmp_path: Path) -> None:
    with warehouse.transaction():
        assert warehouse.load_from_scratch("select 'b1' as batch_id, 1 as n", TARGET, ["batch_id", "n"]) == 1
        assert len(staged(tmp_path)) == 1 and published(tmp_path) == []
    assert published(tmp_path) == ["batch-b1.parquet"] and staged(tmp_path) == []


@pytest.mark.parametrize("failure", ["after the load", "while writing"])
def test_a_failed_load_deletes_what_it_staged(warehouse: SparkWarehouse, tmp_path: Path, failure: str) -> None:
    """A block that fails after its load, or a batch that cannot be written (a value that
    is not a number for an integer column): no staged file, nothing published, and the
    source state written in the same block rolled back."""
    with pytest.raises((RuntimeError, WarehouseError)):
        with warehouse.transaction():
            ops.set_state(warehouse, "events", "cursor", "42")
            if failure == "after the load":
                warehouse.load_from_scratch("select 'b1' as batch_id, 1 as n", TARGET, ["batch_id", "n"])
                assert len(staged(tmp_path)) == 1
                raise RuntimeError("a later statement failed")
            warehouse.load_from_scratch("select 'b1' as batch_id, 'x' as n", TARGET, ["batch_id", "n"])
    assert staged(tmp_path) == [] and published(tmp_path) == []
    assert ops.get_state(warehouse, "events", "cursor") is None


CRASH = textwrap.dedent("""
    import os, signal, sys
    import pyarrow as pa
    sys.path.insert(0, sys.argv[2])
    from tests.warehouse import test_spark_staging as t
    from lakebox.warehouse.spark import SparkWarehouse

    SparkWarehouse._publish = lambda self: os.kill(os.getpid(), signal.SIGKILL)  # dies before the rename
    wh = t._without_spark(SparkWarehouse(t._settings(t.Path(sys.argv[1]))), t.Path(sys.argv[1]))
    with wh.transaction():
        wh.load_from_scratch("select 'b1' as batch_id, range as n from range(1000)", t.TARGET, ["batch_id", "n"])
""")


def test_files_a_killed_load_staged_are_removed_by_the_next_writer(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    crashed = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path), str(root)], capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    left = staged(tmp_path)
    assert len(left) == 1 and published(tmp_path) == []
    locks = sorted((tmp_path / "spark-warehouse" / STAGING).glob("*.lock"))
    assert [p.stem for p in locks] == [left[0].name.rsplit("-", 1)[0]]  # the dead owner's lock

    with open_warehouse(_settings(tmp_path)):
        assert staged(tmp_path) == [] and published(tmp_path) == []
        assert list((tmp_path / "spark-warehouse" / STAGING).glob("*.lock")) == []


def test_files_of_a_process_still_loading_are_kept(tmp_path: Path) -> None:
    """Another live owner (a second pipeline loading into the same warehouse) keeps its
    staged file and lock; only the dead owner's file goes."""
    root = tmp_path / "spark-warehouse"
    live, sweeper = StagingArea(root), StagingArea(root)
    try:
        mine = live.new_file(_table_dir(tmp_path))
        mine.write_bytes(b"staged")
        dead = _table_dir(tmp_path) / STAGING / "12345-deadbeef-0123.parquet"
        dead.write_bytes(b"left by a crash")
        assert sweeper.sweep() == [dead]
        assert staged(tmp_path) == [mine] and (root / STAGING / f"{live.owner}.lock").exists()
    finally:
        live.close()
    assert not (root / STAGING / f"{live.owner}.lock").exists()
    assert sweeper.sweep() == [mine]  # its owner gone, the file would be a leftover
