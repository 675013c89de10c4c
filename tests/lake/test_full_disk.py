"""A write that fails (a full disk, a file-size limit, a crash) leaves nothing partial in
the lake: its temporary file is removed at once, or by the next `Lake` when the process
died; the error names the object, the lake's folder and LAKEBOX_LAKE."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakebox.errors import LakeError
from lakebox.lake import Lake
from lakebox.lake.store import STALE_TMP_SECONDS, TMP_DIR
from lakebox.lake.verify import verify_lake

SRC = str(Path(__file__).resolve().parents[2] / "src")


def leftovers(root: Path) -> list[str]:
    """Every temporary file anywhere in the lake."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for the test; skipped where mounting is not permitted."""
    where = tmp_path / "disk"
    where.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here to make a small tmpfs")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True, timeout=30)


def test_a_full_disk_leaves_nothing_partial_and_says_where(small_disk: Path) -> None:
    lake = Lake(str(small_disk / "lake"))
    big = os.urandom(2 << 20)
    for _ in range(3):  # each failed run used to add one more partial file
        with pytest.raises(LakeError) as caught:
            lake.land_batch("retail", big, "csv")
        message = str(caught.value)
        assert str(small_disk / "lake") in message and "LAKEBOX_LAKE" in message and "disk is full" in message
        assert "raw/retail/" in message
    assert leftovers(small_disk) == []
    assert list((small_disk / "lake" / "raw").rglob("*.csv")) == []  # no half object under its final name
    with pytest.raises(LakeError, match="LAKEBOX_LAKE"):
        lake.overwrite("snapshots/m/snapshot_date=2026-01-01/m.parquet", big)
    assert leftovers(small_disk) == [] and not list((small_disk / "lake").rglob("*.parquet"))
    small = lake.land_batch("retail", b"store_id\n1\n", "csv")  # the space came back
    assert lake.read_bytes(small.key) == b"store_id\n1\n"


def run_python(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": SRC})


def test_a_write_cut_short_by_a_file_size_limit_is_removed(tmp_path: Path) -> None:
    """No mount needed: RLIMIT_FSIZE makes the write fail part-way (EFBIG), as a full disk does."""
    root = tmp_path / "lake"
    done = run_python(f"""
        import resource, signal
        from lakebox.lake import Lake
        lake = Lake({str(root)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            lake.land_batch("orders", b"x" * (1 << 20), "json")
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    assert done.stdout.startswith("LakeError"), done.stdout + done.stderr
    assert str(root) in done.stdout and "LAKEBOX_LAKE" in done.stdout and "raw/orders/" in done.stdout
    assert leftovers(root) == [] and not list(root.rglob("*.json"))


def test_a_hard_crash_leftover_is_removed_by_the_next_lake(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    done = run_python(f"""
        import os
        from lakebox.lake import Lake
        lake = Lake({str(root)!r})
        os.link = lambda *a, **k: os._exit(9)  # the process dies between writing and linking
        lake.land_batch("orders", b"{{}}", "json")
    """)
    assert done.returncode == 9, done.stderr
    assert len(leftovers(root)) == 1 and leftovers(root)[0].startswith(TMP_DIR)

    tmp = root / TMP_DIR
    fresh_elsewhere = tmp / f"1-{'a' * 32}@another-host.tmp"
    stale_elsewhere = tmp / f"1-{'b' * 32}@another-host.tmp"
    mine_running = tmp / f"{os.getpid()}-{'c' * 32}@{socket.gethostname()}.tmp"
    for path in (fresh_elsewhere, stale_elsewhere, mine_running):
        path.write_bytes(b"partial")
    old = time.time() - STALE_TMP_SECONDS - 60
    os.utime(stale_elsewhere, (old, old))

    lake = Lake(str(root))
    assert len(lake.removed_leftovers) == 2
    assert sorted(p.name for p in tmp.iterdir()) == sorted([fresh_elsewhere.name, mine_running.name])
    lake.land_batch("orders", b"{}", "json")  # and the lake still works
    assert not list(root.rglob("*.json.*"))


def test_verify_reports_temporary_files_left_in_the_raw_zone(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    m = lake.land_batch("orders", b"{}", "json")
    stray = Path(lake.path(m.key + ".0123456789abcdef.tmp"))  # where earlier versions wrote them
    stray.write_bytes(b"{")
    report = verify_lake(lake, "raw", [])
    assert [(d.key, d.problem) for d in report.differences] == [(m.key + ".0123456789abcdef.tmp", "leftover")]
    assert report.unledgered == 1 and report.objects == 1


def test_a_retail_run_on_a_full_lake_fails_naming_the_path_and_records_nothing(
        small_disk: Path, tmp_path: Path) -> None:
    from lakebox.pipelines import get_spec
    from lakebox.runner import run_pipeline
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse
    from tests.pipelines.retail.test_gate import Drop

    drop = Drop(tmp_path)
    drop.put("daily_sales_2025-03-09.csv", b"date,store_id\n" + b"2025-03-09,S001\n" * (160 << 10))  # 2.5 MB
    settings = Settings.load(env=drop.env(LAKEBOX_LAKE=str(small_disk / "lake")), cwd=drop.home)
    with open_warehouse(settings) as wh:
        outcome = run_pipeline(get_spec("retail").pipeline(stages=("land",)), settings, Lake.from_settings(settings), wh)
        assert outcome.status == "failed"
        assert str(small_disk / "lake" / "raw" / "retail") in (outcome.error or "")
        assert "LAKEBOX_LAKE" in (outcome.error or "") and "disk is full" in (outcome.error or "")
        assert wh.query("select count(*) from ops.batches") == [(0,)]  # nothing recorded as landed
    assert leftovers(small_disk) == []
