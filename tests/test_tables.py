"""Lists as a person reads them at 80 columns, and as a program reads them from a pipe."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from lakebox.settings import Settings
from lakebox.tables import Column, Table, layout, plain_lines
from lakebox.warehouse import open_warehouse, ops
from lakebox.warehouse.ops import quarantine
from tests.conftest import run_cli
from tests.terminal import run_in_terminal

RUN_IDS = [f"{p}-20261207T120700-abc12{i}" for i, p in enumerate(("github_commits", "retail", "orders"))]
ITEMS = ["daily_sales_2026-10-08.csv", "daily_sales_2026-10-09.csv"]
BATCH = "0123456789abcdef01234567"


@pytest.fixture
def seeded(lakebox_env: dict[str, str]) -> dict[str, str]:
    """A home with three runs (one failed with a long error) and two open quarantined items."""
    with open_warehouse(Settings.load()) as wh:
        for run_id, status in zip(RUN_IDS, ("success", "partial", "failed"), strict=True):
            ops.start_run(wh, run_id, run_id.split("-")[0])
            ops.end_run(wh, run_id, status, ops.utcnow(), 1234567, 89012,
                        "dbt build failed: model daily_order_metrics: " + "x" * 200 if status == "failed" else None)
        for item in ITEMS:
            quarantine.open_item(wh, source="retail_daily_sales", pipeline="retail", batch_id=BATCH, item=item,
                                 lake_path="raw/x", quarantine_path="quarantine/x", run_id=RUN_IDS[1],
                                 rules='[{"rule": "not_null", "column": "store_id", "failing_rows": 3}]')
    return lakebox_env


def _whole_on_one_line(screen: str, names: list[str]) -> None:
    for name in names:
        assert any(name in line for line in screen.splitlines()), f"{name} is split across lines:\n{screen}"


def test_status_at_80_columns_keeps_every_id_whole_on_one_line(seeded: dict[str, str]) -> None:
    code, screen = run_in_terminal("status", env=seeded, columns=80)
    assert code == 0, screen
    _whole_on_one_line(screen, [*RUN_IDS, *ITEMS])
    table = [line for line in screen.splitlines() if line.startswith(tuple(RUN_IDS))]
    assert len(table) == 3 and all(len(line) <= 80 for line in table), screen
    assert "89,012" in screen, "numbers with separators"
    failed = next(line for line in table if line.startswith(RUN_IDS[2]))
    assert "failed" in failed and failed.endswith("…"), "the long error is shortened, not wrapped"
    assert "not shown at 80 columns: pipeline" in screen


def test_a_wide_terminal_shows_every_column(seeded: dict[str, str]) -> None:
    code, screen = run_in_terminal("status", env=seeded, columns=200)
    assert code == 0, screen
    assert "not shown" not in screen.split("open quarantined")[0]
    assert "1,234,567" in screen and "started (UTC)" in screen


def test_quarantine_list_at_80_columns_keeps_ids_and_file_names_whole(seeded: dict[str, str]) -> None:
    code, screen = run_in_terminal("quarantine", "list", env=seeded, columns=80)
    assert code == 0, screen
    _whole_on_one_line(screen, ITEMS)
    rows = [line for line in screen.splitlines() if any(item in line for item in ITEMS)]
    assert len(rows) == 2 and all(len(line) <= 80 and line.startswith("q") for line in rows), screen


def test_config_at_80_columns_is_one_line_per_setting(lakebox_env: dict[str, str]) -> None:
    code, screen = run_in_terminal("config", env=lakebox_env, columns=80)
    assert code == 0, screen
    settings = [line for line in screen.splitlines() if line.startswith("LAKEBOX_")]
    names = {line.split()[0] for line in settings}
    assert len(settings) == len(names) == len(Settings.load().declared), "no setting spilt onto a second line"
    code, documented = run_in_terminal("config", "--doc", env=lakebox_env, columns=80)
    lines = documented.splitlines()
    assert code == 0 and sum(line.startswith("LAKEBOX_") for line in lines) == len(names)
    assert all(len(line) <= 80 for line in lines if line.startswith("    ")), "the doc wraps, indented, at 80"


def test_piped_lists_are_tab_separated_lines_a_program_can_grep(seeded: dict[str, str]) -> None:
    listed = run_cli("quarantine", "list", env={**seeded, "COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split("\t")[:5] == ["id", "pipeline", "source", "item", "batch"]
    [line] = [row for row in rows if "daily_sales_2026-10-08" in row]  # `| grep daily_sales_2026-10-08`
    fields = line.split("\t")
    assert len(fields) == len(header.split("\t")) and fields[3] == ITEMS[0] and fields[4] == BATCH

    status = run_cli("status", env={**seeded, "COLUMNS": "80"})
    runs = [line.split("\t") for line in status.stdout.splitlines() if line.startswith(tuple(RUN_IDS))]
    assert sorted(r[0] for r in runs) == sorted(RUN_IDS)
    assert {r[2] for r in runs} == {"success", "partial", "failed"} and {r[5] for r in runs} == {"1234567"}
    assert all("x" * 200 in r[7] for r in runs if r[2] == "failed"), "the whole error, on its line"


def test_every_list_prints_json_with_every_column(seeded: dict[str, str]) -> None:
    items = orjson.loads(run_cli("quarantine", "list", "--json", env=seeded).stdout)
    assert [i["item"] for i in items] == ITEMS and {i["batch_id"] for i in items} == {BATCH}
    status = orjson.loads(run_cli("status", "--json", env=seeded).stdout)
    assert {r["run_id"] for r in status["runs"]} == set(RUN_IDS) and len(status["open_quarantine"]) == 2
    assert {r["rows_in"] for r in status["runs"]} == {1234567}
    config = orjson.loads(run_cli("config", "--json", env=seeded).stdout)
    home = next(s for s in config if s["name"] == "LAKEBOX_HOME")
    assert home["origin"] == "env" and home["value"] == seeded["LAKEBOX_HOME"] and home["doc"]


def test_the_narrowest_terminal_drops_columns_in_the_declared_order_and_never_cuts_an_id() -> None:
    columns = [Column("id", kind="id"), Column("name", kind="id", drop=2), Column("when", drop=1),
               Column("n", kind="number"), Column("note")]
    table = Table(columns, [("run-0123456789", "github_commits", dt.datetime(2026, 12, 7), 1234567, "y" * 90)])
    shown, widths, cells = layout(table, 200)
    assert shown == [0, 1, 2, 3, 4] and cells[0][3] == "1,234,567"
    shown, widths, _ = layout(table, 60)
    assert shown == [0, 1, 3, 4] and sum(widths) + 2 * (len(shown) - 1) == 60, "the note is shortened to fit"
    shown, widths, _ = layout(table, 40)
    assert shown == [0, 3, 4] and widths[0] == len("run-0123456789")
    shown, widths, _ = layout(table, 20)
    assert shown == [0, 3, 4] and widths[0] == len("run-0123456789"), "the id stays whole; the line runs on"
    assert plain_lines(table)[1] == "run-0123456789\tgithub_commits\t2026-12-07 00:00:00\t1234567\t" + "y" * 90


def test_lake_verify_lists_differences_whole_at_80_columns_piped_and_as_json(lakebox_env: dict[str, str]) -> None:
    from pathlib import Path

    from lakebox.lake import Lake

    lake = Lake(str(Path(lakebox_env["LAKEBOX_HOME"]) / "lake"))
    landed = lake.land_batch("orders", b'{"records": []}', "json", rows=0)  # landed, never recorded
    (Path(lakebox_env["LAKEBOX_HOME"]) / "lake" / landed.key).write_bytes(b"{}")
    code, screen = run_in_terminal("lake", "verify", env=lakebox_env, columns=80)
    assert code == 1, screen
    _whole_on_one_line(screen, [landed.key])
    piped = run_cli("lake", "verify", env=lakebox_env)
    assert piped.returncode == 1
    header, row = piped.stdout.splitlines()
    assert header == "problem\tbatch\tobject\tdetail" and row.split("\t")[2] == landed.key
    assert "checked 1 object(s)" in piped.stderr
    found = orjson.loads(run_cli("lake", "verify", "--json", env=lakebox_env).stdout)
    assert [d["object"] for d in found["differences"]] == [landed.key] and found["objects"] == 1
