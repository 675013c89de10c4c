"""Shared pieces of the Dagster adapter's tests: Dagster's own warnings allowed, a small
retail drop, and reading the audit rows a run left."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

# Dagster warns about its own beta/preview APIs and deprecations inside its packages; none is ours.
DAGSTER_WARNINGS = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is currently in (beta|preview):UserWarning"),
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore::dagster.PreviewWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]
FIRST_DAY = "2025-03-01"


@pytest.fixture(scope="session")
def generated_drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """31 days of drops for 3 stores, generated once: copy the days a test needs."""
    from lakebox.pipelines.retail.generator import generate_drops

    folder = tmp_path_factory.mktemp("retail-drop")
    generate_drops(str(folder), stores=3, months=1, seed=3, start=FIRST_DAY)
    return folder


def drop_days(source: Path, landing: Path, *days: str, stores: bool = True) -> list[str]:
    """Put the given days' files (and the store master) into the landing folder."""
    landing.mkdir(parents=True, exist_ok=True)
    names = [*(["stores.csv"] if stores else []), *(p.name for day in days for p in sorted(source.glob(f"*_{day}.csv")))]
    for name in names:
        shutil.copy(source / name, landing / name)
    return names


def query(home: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def break_first_sale(path: Path) -> None:
    """A negative sale in the file's first row: the contract's range rule quarantines the file."""
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[3] = "-5.00"
    path.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
