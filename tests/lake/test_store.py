import hashlib
import os
from pathlib import Path

import orjson
import pytest

from lakebox.errors import LakeError, RawObjectExistsError
from lakebox.lake import Lake, batch_id_for


def test_land_batch_writes_bytes_and_manifest(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    data = b'{"records": []}'
    m = lake.land_batch("orders", data, "json", rows=0)
    assert m.key == f"raw/orders/ingest_date={m.ingest_date}/{m.batch_id}.json"
    assert lake.read_bytes(m.key) == data
    manifest = orjson.loads(lake.read_bytes(m.key.replace(".json", ".manifest.json")))
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["bytes"] == len(data) and manifest["source"] == "orders" and manifest["rows"] == 0
    assert manifest["fetched_at"]


def test_batch_id_comes_from_content() -> None:
    assert batch_id_for("s", b"a") == batch_id_for("s", b"a")
    assert batch_id_for("s", b"a") != batch_id_for("s", b"b")
    assert batch_id_for("s", b"a") != batch_id_for("t", b"a")


def test_raw_is_write_once(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    key = "raw/x/ingest_date=2026-01-01/b.json"
    assert lake.put_once(key, b"one") is True
    assert lake.put_once(key, b"one") is False  # same bytes: a no-op, so a crashed run can land again
    with pytest.raises(RawObjectExistsError):
        lake.put_once(key, b"two")
    assert lake.read_bytes(key) == b"one"
    assert [p for p in os.listdir(tmp_path / "lake/raw/x/ingest_date=2026-01-01")] == ["b.json"]  # no temp left


def test_overwrite_refuses_raw(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(LakeError):
        lake.overwrite("raw/x/y.json", b"z")
    lake.overwrite("snapshots/m/snapshot_date=2026-01-01/m.parquet", b"1")
    lake.overwrite("snapshots/m/snapshot_date=2026-01-01/m.parquet", b"2")
    assert lake.read_bytes("snapshots/m/snapshot_date=2026-01-01/m.parquet") == b"2"


def test_quarantine_keeps_bytes_and_errors_beside(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    key = lake.quarantine("retail", "sales.csv", b"a,b\n1", {"rule": "ragged"})
    assert lake.read_bytes(key) == b"a,b\n1"
    assert orjson.loads(lake.read_bytes(key + ".errors.json")) == {"rule": "ragged"}
    assert lake.list("quarantine/retail") == sorted([key, key + ".errors.json"])
