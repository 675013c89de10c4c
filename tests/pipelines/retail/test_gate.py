"""The retail quality gate without dbt: every kind of bad file is quarantined with the
right rule, column and line numbers; nothing is lost; good files still load; policies;
re-drops and corrected files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from lakebox.errors import ConfigError
from lakebox.lake import Lake
from lakebox.pipelines.retail.generator import build_drop, drop_files
from lakebox.pipelines.retail.pipeline import INGEST_ONLY
from lakebox.runner import RunOutcome, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse

START = dt.date(2025, 3, 1)
RAW_TABLES = ("raw.retail_stores", "raw.retail_daily_sales", "raw.retail_inventory", "raw.retail_promotions")


class Drop:
    """A small generated drop in an isolated home, and ways to run the gate over it."""

    def __init__(self, root: Path, stores: int = 3) -> None:
        self.home = root / "home"
        self.landing = self.home / "landing" / "retail"
        self.landing.mkdir(parents=True)
        self.files = drop_files(build_drop(stores, 1, 5, START))
        for name, data in self.files.items():
            (self.landing / name).write_bytes(data)

    def env(self, **extra: str) -> dict[str, str]:
        return {"LAKEBOX_HOME": str(self.home), "LAKEBOX_CONFIG": "off", **extra}

    def run(self, **extra: str) -> RunOutcome:
        settings = Settings.load(env=self.env(**extra), cwd=self.home)
        with open_warehouse(settings) as wh:
            return run_pipeline(INGEST_ONLY, settings, Lake.from_settings(settings), wh)

    def put(self, name: str, data: bytes) -> None:
        (self.landing / name).write_bytes(data)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.home / "warehouse.duckdb"), read_only=True) as con:
            return con.execute(sql).fetchall()

    def status(self) -> dict[str, str]:
        rows = self.query("select meta, status from ops.batches order by landed_at, batch_id")
        return {orjson.loads(meta)["file"]: status for meta, status in rows}

    def quarantined(self, name: str) -> tuple[bytes, dict[str, Any]]:
        found = sorted((self.home / "lake" / "quarantine" / "retail").glob(f"*/*/{name}"))
        assert found, f"{name} is not in quarantine"
        item = found[-1]
        return item.read_bytes(), orjson.loads(item.with_name(name + ".errors.json").read_bytes())

    def raw_copies(self, name: str) -> list[bytes]:
        rows = self.query(f"select lake_path from ops.batches where meta like '%\"file\":\"{name}\"%'")
        return [(self.home / "lake" / key).read_bytes() for (key,) in rows]


def day(n: int) -> str:
    return (START + dt.timedelta(days=n - 1)).isoformat()


def replace_line(line_no: int, fn: Callable[[list[str]], list[str]]) -> Callable[[bytes], bytes]:
    """Edit one CSV line (1 = header) as a list of fields."""
    def edit(data: bytes) -> bytes:
        lines = data.decode().split("\n")
        lines[line_no - 1] = ",".join(fn(lines[line_no - 1].split(",")))
        return "\n".join(lines).encode()
    return edit


def set_field(line_no: int, index: int, value: str) -> Callable[[bytes], bytes]:
    return replace_line(line_no, lambda f: f[:index] + [value] + f[index + 1:])


def drop_column(index: int) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        return "\n".join(
            ",".join(f[:index] + f[index + 1:]) if line else line
            for line in data.decode().split("\n") for f in [line.split(",")]
        ).encode()
    return edit


def swap_columns(a: int, b: int) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        out = []
        for line in data.decode().split("\n"):
            f = line.split(",")
            if line:
                f[a], f[b] = f[b], f[a]
            out.append(",".join(f))
        return "\n".join(out).encode()
    return edit


def add_column(data: bytes) -> bytes:
    lines = data.decode().split("\n")
    return "\n".join([lines[0] + ",loyalty_sales"] + [ln + ",1.0" if ln else ln for ln in lines[1:]]).encode()


def rename_header(old: str, new: str) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        header, rest = data.split(b"\n", 1)
        return header.replace(old.encode(), new.encode()) + b"\n" + rest
    return edit


def duplicate_line(line_no: int) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        return b"\n".join(lines[:line_no] + [lines[line_no - 1]] + lines[line_no:])
    return edit


def ragged(line_no: int) -> Callable[[bytes], bytes]:
    return replace_line(line_no, lambda f: f[:-1])


# (file kind, edit, expected rule, expected column, expected line numbers or None)
BAD_FILES: dict[str, tuple[str, Callable[[bytes], bytes], str, str | None, list[int] | None]] = {
    "missing_column": ("daily_sales", drop_column(5), "schema_drift", "discount_pct", None),
    "renamed_column": ("daily_sales", rename_header("total_sales", "sales_total"), "schema_drift", "total_sales", None),
    "reordered_columns": ("inventory", swap_columns(3, 4), "schema_drift", "on_hand_units", None),
    "extra_column": ("daily_sales", add_column, "schema_drift", "loyalty_sales", None),
    "not_a_number": ("daily_sales", set_field(4, 3, "12,5".replace(",", ".") + "x"), "type", "total_sales", [4]),
    "bad_date": ("inventory", set_field(3, 0, "2025-02-30"), "type", "date", [3]),
    "discount_above_1": ("daily_sales", set_field(6, 5, "1.5"), "max", "discount_pct", [6]),
    "negative_sales": ("daily_sales", set_field(2, 3, "-10.00"), "min", "total_sales", [2]),
    "fractional_count": ("daily_sales", set_field(7, 4, "3.5"), "pattern", "transaction_count", [7]),
    "stockout_not_boolean": ("inventory", set_field(5, 4, "maybe"), "accepted_values", "stockout", [5]),
    "unknown_store": ("daily_sales", set_field(3, 1, "S999"), "known_store", "store_id", [3]),
    "duplicate_key": ("inventory", duplicate_line(4), "unique", "date, store_id, category", [4, 5]),
    "ragged_rows": ("daily_sales", ragged(5), "ragged_rows", None, [5]),
    "not_utf8": ("daily_sales", lambda d: d.replace(b"grocery", "épicerie".encode("latin-1"), 1), "encoding", None,
                 [2]),
    "empty": ("daily_sales", lambda d: b"", "empty_file", None, None),
    "header_only": ("inventory", lambda d: d.split(b"\n", 1)[0] + b"\n", "header_only", None, None),
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Drop, RunOutcome, dict[str, str]]:
    """One drop holding every kind of bad file, each on its own day, gated in one run."""
    drop = Drop(tmp_path_factory.mktemp("matrix"))
    chosen: dict[str, str] = {}
    for n, (case, (kind, edit, *_)) in enumerate(BAD_FILES.items(), start=2):
        name = f"{kind}_{day(n)}.csv"
        drop.put(name, edit(drop.files[name]))
        chosen[case] = name
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    future = drop.files[f"daily_sales_{day(1)}.csv"].replace(day(1).encode(), tomorrow.encode())
    drop.put(f"daily_sales_{tomorrow}.csv", future)
    chosen["future_date"] = f"daily_sales_{tomorrow}.csv"
    drop.put("notes.txt", b"hello")
    chosen["unknown_file"] = "notes.txt"
    return drop, drop.run(), chosen


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_each_bad_file_is_quarantined_with_rule_column_and_lines(matrix: Any, case: str) -> None:
    drop, outcome, chosen = matrix
    _, _, rule, column, lines = BAD_FILES[case]
    name = chosen[case]
    assert drop.status()[name] == "quarantined"
    kept, errors = drop.quarantined(name)
    assert kept == (drop.landing / name).read_bytes(), "quarantine keeps the original bytes"
    assert drop.raw_copies(name) == [kept], "raw keeps the original bytes"
    failed = {(r["rule"], r["column"]): r for r in errors["rules"]}
    assert (rule, column) in failed, errors["rules"]
    if lines is not None:
        assert failed[(rule, column)]["rows"] == lines
    assert errors["item"] == name and errors["batch_id"] and errors["what_to_do"]
    assert errors["quarantine_path"].endswith(f"/{errors['batch_id']}/{name}")
    assert name in (outcome.error or "")
    assert name in {i.item for i in outcome.quarantined}
    for table in RAW_TABLES:
        assert drop.query(f"select count(*) from {table} where file_name = '{name}'") == [(0,)]


@pytest.mark.parametrize(("case", "rule"), [("future_date", "future_date"), ("unknown_file", "unknown_file")])
def test_future_and_unknown_files_are_quarantined(matrix: Any, case: str, rule: str) -> None:
    drop, _, chosen = matrix
    _, errors = drop.quarantined(chosen[case])
    assert [r["rule"] for r in errors["rules"]] == [rule]


def test_good_files_still_load_and_the_run_is_partial(matrix: Any) -> None:
    drop, outcome, chosen = matrix
    bad = set(chosen.values())
    statuses = drop.status()
    assert {n for n, s in statuses.items() if s != "loaded"} == bad
    assert outcome.status == "partial"
    assert [s[:2] for s in outcome.stages] == [("land", "success"), ("load", "success")]
    assert sorted(i.item for i in outcome.quarantined) == sorted(bad)
    assert drop.query("select count(*) from ops.quarantine where status = 'open'") == [(len(bad),)]
    loaded_sales = drop.query("select count(distinct file_name) from raw.retail_daily_sales")[0][0]
    assert loaded_sales == sum(1 for n in statuses if n.startswith("daily_sales_") and n not in bad)
    assert drop.query("select count(*) from raw.retail_stores") == [(3,)]
    checks = drop.query("select count(*), count(*) filter (where not passed) from ops.dq_results")[0]
    assert checks[0] > 100 and checks[1] >= len(BAD_FILES)


def test_a_clean_drop_loads_every_row(tmp_path: Path) -> None:
    drop = Drop(tmp_path)
    outcome = drop.run()
    assert outcome.status == "success", outcome.error
    assert set(drop.status().values()) == {"loaded"}
    sales_rows = sum(d.count(b"\n") - 1 for n, d in drop.files.items() if n.startswith("daily_sales_"))
    assert drop.query("select count(*) from raw.retail_daily_sales") == [(sales_rows,)]
    typed = drop.query("select typeof(date), typeof(total_sales), typeof(transaction_count) "
                       "from raw.retail_daily_sales limit 1")
    assert typed == [("DATE", "DOUBLE", "BIGINT")]

    again = drop.run()  # the same files again: nothing new
    assert again.status == "success" and again.stages[0][3] == 0
    name = f"daily_sales_{day(2)}.csv"
    (drop.landing / name).unlink()
    drop.put(name, drop.files[name])  # the same bytes re-dropped (a new file, a new mtime)
    redropped = drop.run()
    assert redropped.status == "success" and redropped.stages[0][3] == 0
    assert drop.query("select count(*) from raw.retail_daily_sales") == [(sales_rows,)]
    assert drop.query("select count(*) from ops.batches") == [(len(drop.files),)]


def test_a_corrected_file_is_a_new_version(tmp_path: Path) -> None:
    drop = Drop(tmp_path)
    drop.put(f"daily_sales_{day(3)}.csv", set_field(2, 3, "-1")(drop.files[f"daily_sales_{day(3)}.csv"]))
    assert drop.run().status == "partial"
    assert drop.run().status == "partial", "nothing new, but the item is still open"
    fixed = set_field(2, 3, "123.45")(drop.files[f"daily_sales_{day(3)}.csv"])
    drop.put(f"daily_sales_{day(3)}.csv", fixed)
    outcome = drop.run()
    assert outcome.status == "success", outcome.error
    (loaded_batch,), = drop.query(f"select batch_id from ops.batches where status = 'loaded' "
                                  f"and meta like '%daily_sales_{day(3)}%'")
    assert drop.query("select item, status, superseded_by_batch from ops.quarantine") == [
        (f"daily_sales_{day(3)}.csv", "resolved", loaded_batch)]
    versions = drop.query(
        "select status from ops.batches where meta like '%daily_sales_" + day(3) + "%' order by landed_at")
    assert versions == [("quarantined",), ("loaded",)]
    assert drop.query(f"select total_sales from raw.retail_daily_sales where file_name = 'daily_sales_{day(3)}.csv' "
                      "order by total_sales limit 1") == [(float(fixed.split(b"\n")[1].split(b",")[3]),)]

    fixed_again = set_field(2, 3, "200.00")(fixed)  # a second correction of a loaded file
    drop.put(f"daily_sales_{day(3)}.csv", fixed_again)
    assert drop.run().status == "success"
    loaded = drop.query(f"select count(distinct batch_id) from raw.retail_daily_sales "
                        f"where file_name = 'daily_sales_{day(3)}.csv'")
    assert loaded == [(2,)], "raw keeps both loaded versions; staging takes the newest"


def test_fail_fast_stops_at_the_first_bad_file_and_loads_nothing_of_its_day(tmp_path: Path) -> None:
    drop = Drop(tmp_path)
    bad_name = f"inventory_{day(10)}.csv"
    drop.put(bad_name, set_field(3, 3, "-4")(drop.files[bad_name]))
    drop.put(f"daily_sales_{day(20)}.csv", b"")  # a later bad file is not even reached
    outcome = drop.run(LAKEBOX_RETAIL_POLICY="fail-fast")
    assert outcome.status == "failed" and "fail-fast" in (outcome.error or "")
    assert outcome.stages[1][:2] == ("load", "failed")
    statuses = drop.status()
    assert statuses[bad_name] == "quarantined"
    assert statuses[f"daily_sales_{day(20)}.csv"] == "landed"
    for name, status in statuses.items():
        file_day = name.rsplit("_", 1)[-1].removesuffix(".csv")
        if name == "stores.csv" or file_day < day(10):
            assert status == "loaded", name
        elif name != bad_name:
            assert status == "landed", name  # pending, not loaded
    assert drop.query(f"select count(*) from raw.retail_daily_sales where date >= '{day(10)}'") == [(0,)]

    drop.put(bad_name, drop.files[bad_name])
    drop.put(f"daily_sales_{day(20)}.csv", drop.files[f"daily_sales_{day(20)}.csv"])
    again = drop.run(LAKEBOX_RETAIL_POLICY="fail-fast")
    assert again.status == "success", again.error
    versions = drop.query("select status from ops.batches where meta like '%daily_sales_" + day(20) + "%' "
                          "order by landed_at")
    assert versions == [("superseded",), ("loaded",)], "a pending version replaced before loading is skipped"
    assert drop.query("select item, status from ops.quarantine") == [(bad_name, "resolved")]
    assert drop.query(f"select count(*) from raw.retail_inventory where file_name = '{bad_name}'")[0][0] > 0


def test_an_unknown_policy_is_a_config_error_before_anything_runs(tmp_path: Path) -> None:
    drop = Drop(tmp_path, stores=1)
    with pytest.raises(ConfigError, match="LAKEBOX_RETAIL_POLICY='yolo' .*one of quarantine, fail-fast"):
        drop.run(LAKEBOX_RETAIL_POLICY="yolo")
    assert not (drop.home / "warehouse.duckdb").exists() and not (drop.home / "lake").exists(), "nothing ran"


def test_crlf_bom_and_quoted_files_load_and_an_open_quote_harms_only_its_file(tmp_path: Path) -> None:
    drop = Drop(tmp_path)
    crlf, bom, quoted, open_quote, ragged_then_misdated = (f"inventory_{day(n)}.csv" for n in (2, 3, 4, 5, 6))
    drop.put(crlf, drop.files[crlf].replace(b"\n", b"\r\n"))
    drop.put(bom, b"\xef\xbb\xbf" + drop.files[bom])
    drop.put(quoted, replace_line(2, lambda f: [f'"{v}"' for v in f])(drop.files[quoted]))
    drop.put(open_quote, replace_line(3, lambda f: ['"' + f[0]] + f[1:])(drop.files[open_quote]))
    edit = replace_line(3, lambda f: f + ["x"])
    drop.put(ragged_then_misdated, set_field(7, 0, "2024-01-01")(edit(drop.files[ragged_then_misdated])))
    outcome = drop.run()
    statuses = drop.status()
    assert {n for n, s in statuses.items() if s != "loaded"} == {open_quote, ragged_then_misdated}, outcome.error
    rules = {(r["rule"], r["column"]): r["rows"] for r in drop.quarantined(ragged_then_misdated)[1]["rules"]}
    assert rules == {("ragged_rows", None): [3], ("file_date", "date"): [7]}, "lines stay right after a reject"
    assert [r["rule"] for r in drop.quarantined(open_quote)[1]["rules"]] == ["parse"]
    assert drop.query(f"select count(*) from raw.retail_inventory where file_name in ('{crlf}', '{bom}', '{quoted}')"
                      ) == [(3 * 18,)]


def test_without_stores_the_other_files_wait_pending_instead_of_failing(tmp_path: Path) -> None:
    drop = Drop(tmp_path, stores=1)
    (drop.landing / "stores.csv").unlink()
    outcome = drop.run()
    assert outcome.status == "failed" and "no stores.csv" in (outcome.error or "")
    assert set(drop.status().values()) == {"landed"}, "nothing judged, nothing lost"
    drop.put("stores.csv", drop.files["stores.csv"])
    assert drop.run().status == "success"
    assert set(drop.status().values()) == {"loaded"}
