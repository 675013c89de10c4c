"""A landed batch is checked against its manifest (sha256, size) before it loads: a changed
or missing object stops its source with an error naming it and the ways out, never loads,
and `lakebox lake forget-batch` / `lakebox lake verify` settle and report it. Run on DuckDB
and PostgreSQL; the state left behind (ledger, raw table) is asserted, not just the error."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from lakebox.lake import BatchManifest, Lake
from lakebox.pipelines.orders import SPEC
from lakebox.runner import Pipeline, RunOutcome, Stage, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse, ops
from tests.conftest import run_cli

load = next(s.fn for s in SPEC.stages if s.name == "load")
LOAD_ONLY = Pipeline("orders", (Stage("load", load),))


def page(first: int, n: int = 100) -> bytes:
    records = [{"order_id": f"O{i}", "customer_id": "C1", "amount": 10.0 + i, "currency": "USD", "status": "placed",
                "created_at": "2026-05-01T09:00:00Z", "updated_at": f"2026-05-01T10:{i % 60:02d}:00Z"}
               for i in range(first, first + n)]
    return orjson.dumps({"records": records, "next_cursor": None})


class Home:
    """An isolated home whose warehouse is DuckDB or a fresh PostgreSQL database."""

    def __init__(self, root: Path, warehouse: str | None) -> None:
        self.home = root / "home"
        self.env = {"LAKEBOX_HOME": str(self.home), "LAKEBOX_CONFIG": "off"}
        if warehouse:
            self.env["LAKEBOX_WAREHOUSE"] = warehouse
        self.settings = Settings.load(env=self.env, cwd=root)
        self.lake = Lake.from_settings(self.settings)

    def land(self, *pages: bytes) -> list[BatchManifest]:
        with open_warehouse(self.settings) as wh:
            manifests = [self.lake.land_batch("orders", p, "json", rows=len(orjson.loads(p)["records"])) for p in pages]
            ops.record_landed_many(wh, manifests, "test")
        return manifests

    def run(self) -> RunOutcome:
        with open_warehouse(self.settings) as wh:
            return run_pipeline(LOAD_ONLY, self.settings, self.lake, wh)

    def query(self, sql: str) -> list[tuple]:
        with open_warehouse(self.settings) as wh:
            return wh.query(sql)

    def status(self) -> dict[str, str]:
        return dict(self.query("select batch_id, status from ops.batches"))

    def file(self, key: str) -> Path:
        return Path(self.lake.path(key))

    def cli(self, *args: str) -> tuple[int, str]:
        import os

        done = run_cli(*args, env={**os.environ, **self.env, "PWD": str(self.home.parent)})
        return done.returncode, done.stdout + done.stderr


@pytest.fixture(params=["duckdb", "postgres"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Home]:
    if request.param == "duckdb":
        yield Home(tmp_path, None)
        return
    from tests.conftest import fresh_database

    admin = request.getfixturevalue("postgres_admin_dsn")
    with fresh_database(admin) as url:
        yield Home(tmp_path, url)


def change_amounts(data: bytes, how_many: int = 50) -> bytes:
    doc = orjson.loads(data)
    for record in doc["records"][:how_many]:
        record["amount"] = 99999.0
    return orjson.dumps(doc)


def test_a_changed_pending_batch_is_never_loaded(home: Home) -> None:
    good, bad = home.land(page(0), page(100))
    home.file(bad.key).write_bytes(change_amounts(page(100)))
    outcome = home.run()
    assert outcome.status == "failed"
    assert bad.key in outcome.error and "sha256" in outcome.error
    assert "lakebox lake forget-batch" in outcome.error and bad.batch_id in outcome.error
    assert home.query("select count(*) from raw.orders") == [(0,)]
    assert home.status() == {good.batch_id: "landed", bad.batch_id: "landed"}  # nothing half done


def test_a_changed_pending_batch_of_the_same_size_is_caught(home: Home) -> None:
    (bad,) = home.land(page(0))
    data = bytearray(page(0))
    data[data.index(b"10.0")] = ord("7")  # one digit: same size, other bytes
    home.file(bad.key).write_bytes(bytes(data))
    outcome = home.run()
    assert outcome.status == "failed" and "sha256" in outcome.error and bad.key in outcome.error
    assert home.status() == {bad.batch_id: "landed"}


def test_a_missing_pending_batch_is_named_and_can_be_forgotten(home: Home) -> None:
    good, gone = home.land(page(0), page(100))
    home.file(gone.key).unlink()
    outcome = home.run()
    assert outcome.status == "failed"
    assert "IndexError" not in outcome.error and "list index" not in outcome.error
    assert gone.key in outcome.error and "missing" in outcome.error and gone.batch_id in outcome.error
    assert "lakebox lake forget-batch" in outcome.error
    assert home.status() == {good.batch_id: "landed", gone.batch_id: "landed"}

    code, out = home.cli("lake", "forget-batch", gone.batch_id)
    assert code != 0 and "--reason" in out  # a reason is required
    code, out = home.cli("lake", "forget-batch", good.batch_id, "--reason", "not lost")
    assert code != 0 and "intact" in out  # an intact batch is not forgotten
    code, out = home.cli("lake", "forget-batch", gone.batch_id, "--reason", "disk replaced, page gone")
    assert code == 0, out
    assert home.status() == {good.batch_id: "landed", gone.batch_id: "lost"}
    error = home.query(f"select error from ops.batches where batch_id = '{gone.batch_id}'")[0][0]
    assert orjson.loads(error)["lost"] == "disk replaced, page gone"

    outcome = home.run()
    assert outcome.status == "success", outcome.error
    assert home.status() == {good.batch_id: "loaded", gone.batch_id: "lost"}
    assert home.query("select count(*) from raw.orders") == [(100,)]


def test_a_missing_batch_is_restored_from_its_original_bytes(home: Home, tmp_path: Path) -> None:
    (gone,) = home.land(page(0))
    home.file(gone.key).unlink()
    wrong = tmp_path / "wrong.json"
    wrong.write_bytes(page(5))
    code, out = home.cli("lake", "restore", gone.batch_id, str(wrong))
    assert code != 0 and "sha256" in out and not home.file(gone.key).exists()
    right = tmp_path / "right.json"
    right.write_bytes(page(0))
    code, out = home.cli("lake", "restore", gone.batch_id, str(right))
    assert code == 0, out
    assert home.run().status == "success"
    assert home.status() == {gone.batch_id: "loaded"}


def test_verify_reports_changed_and_deleted_loaded_batches(home: Home) -> None:
    a, b, c = home.land(page(0), page(100), page(200))
    assert home.run().status == "success"
    code, out = home.cli("lake", "verify")
    assert code == 0, out
    assert "3 batch" in out

    home.file(a.key).write_bytes(change_amounts(page(0)))
    home.file(b.key).unlink()
    code, out = home.cli("lake", "verify", "orders")
    assert code == 1, out
    assert a.key in out and b.key in out and c.key not in out
    assert "sha256" in out and "missing" in out

    code, out = home.cli("lake", "verify", "retail")  # another source: nothing of orders checked
    assert code == 0, out


def test_verify_reports_a_manifest_whose_object_changed_before_any_ledger_knew(home: Home) -> None:
    manifest = home.lake.land_batch("orders", page(0), "json", rows=100)  # landed, never recorded
    home.file(manifest.key).write_bytes(b"{}")
    code, out = home.cli("lake", "verify")
    assert code == 1 and manifest.key in out and "size" in out


def test_hashing_streams_in_chunks(tmp_path: Path) -> None:
    from lakebox.lake.store import DIGEST_CHUNK

    lake = Lake(str(tmp_path / "lake"))
    data = bytes(range(256)) * (DIGEST_CHUNK // 256 * 3 + 7)
    lake.put_once("raw/x/d=1/a.bin", data)
    assert lake.digest("raw/x/d=1/a.bin") == (hashlib.sha256(data).hexdigest(), len(data))
    assert lake.digest("raw/x/d=1/none.bin") is None


def test_a_changed_or_deleted_pending_retail_file_is_never_loaded(tmp_path: Path) -> None:
    from lakebox.pipelines import get_spec
    from tests.pipelines.retail.test_gate import Drop

    drop = Drop(tmp_path, stores=10)
    settings = Settings.load(env=drop.env(), cwd=drop.home)
    with open_warehouse(settings) as wh:
        landed = run_pipeline(get_spec("retail").pipeline(stages=("land",)), settings, Lake.from_settings(settings), wh)
    assert landed.status == "success", landed.error
    sales, inventory = "daily_sales_2025-03-01.csv", "inventory_2025-03-02.csv"
    ((sales_key,),), ((inventory_key,),) = (drop.query(f"select lake_path from ops.batches where meta like '%{n}%'")
                                            for n in (sales, inventory))
    lines = (drop.home / "lake" / sales_key).read_bytes().decode().split("\n")
    for n in range(1, 51):  # 50 amounts changed
        fields = lines[n].split(",")
        fields[3] = "1.0"
        lines[n] = ",".join(fields)
    (drop.home / "lake" / sales_key).write_text("\n".join(lines))
    (drop.home / "lake" / inventory_key).unlink()

    outcome = drop.run()
    assert outcome.status == "failed"
    assert sales_key in outcome.error and "sha256" in outcome.error
    assert inventory_key in outcome.error and "missing" in outcome.error
    assert set(drop.status().values()) == {"landed"}  # nothing loaded, nothing quarantined
    assert drop.query("select count(*) from raw.retail_daily_sales") == [(0,)]
