"""The lake on S3 (moto's server on loopback): write-once raw by conditional create or by
verify-before-write, DuckDB reading through the registered filesystem, landing helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakebox.errors import ConfigError, LakeError, RawObjectExistsError
from lakebox.lake.remote import S3Lake, fs_for_url, lake_for_url

KEY = "raw/orders/ingest_date=2026-01-01/b1.json"


def _env() -> dict[str, str]:
    return dict(os.environ)


def _boto(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


class _PutSpy:
    """Counts the PUTs a lake's filesystem makes and the modes it asks for (s3fs shares one
    filesystem per set of options, so the spy is undone after the test)."""

    def __init__(self, lake: S3Lake, monkeypatch: pytest.MonkeyPatch, ignore_create: bool = False) -> None:
        self.modes: list[str] = []
        self._pipe = lake.fs.pipe_file
        self._ignore_create = ignore_create
        monkeypatch.setattr(lake.fs, "pipe_file", self)

    def __call__(self, path: str, data: bytes, mode: str = "overwrite", **kw):
        self.modes.append(mode)
        return self._pipe(path, data, mode="overwrite" if self._ignore_create else mode, **kw)


def test_conditional_create_refuses_a_second_write_of_other_bytes(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = S3Lake(f"s3://{s3_bucket}/lake", _env(), conditional_writes="on")
    spy = _PutSpy(lake, monkeypatch)
    assert lake.put_once(KEY, b"one") is True
    assert lake.put_once(KEY, b"one") is False  # same bytes: a no-op
    with pytest.raises(RawObjectExistsError, match="write-once"):
        lake.put_once(KEY, b"two")
    assert spy.modes == ["create", "create", "create"]  # no look-before-write: the store decides
    assert lake.read_bytes(KEY) == b"one"


def test_the_store_itself_answers_precondition_failed(s3_bucket: str, s3_endpoint: str) -> None:
    from botocore.exceptions import ClientError

    s3 = _boto(s3_endpoint)
    s3.put_object(Bucket=s3_bucket, Key="lake/" + KEY, Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=s3_bucket, Key="lake/" + KEY, Body=b"two", IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    lake = S3Lake(f"s3://{s3_bucket}/lake", _env(), conditional_writes="on")
    with pytest.raises(RawObjectExistsError):  # another writer got there first
        lake.put_once(KEY, b"two")
    assert s3.get_object(Bucket=s3_bucket, Key="lake/" + KEY)["Body"].read() == b"one"


def test_verify_before_write_when_the_store_ignores_the_header(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = S3Lake(f"s3://{s3_bucket}/lake", {**_env(), "LAKEBOX_S3_CONDITIONAL_WRITES": "off"})
    spy = _PutSpy(lake, monkeypatch, ignore_create=True)
    assert lake.conditional_writes is False
    assert lake.put_once(KEY, b"one") is True
    assert lake.put_once(KEY, b"one") is False
    with pytest.raises(RawObjectExistsError):
        lake.put_once(KEY, b"two")
    assert spy.modes == ["overwrite"]  # only the first write reached the store
    assert lake.read_bytes(KEY) == b"one"


def test_auto_probes_the_store_once_and_cleans_up(s3_bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    honours = S3Lake(f"s3://{s3_bucket}/a", _env())
    assert honours.conditional_mode == "auto"
    assert honours.conditional_writes is True
    ignores = S3Lake(f"s3://{s3_bucket}/b", _env())
    _PutSpy(ignores, monkeypatch, ignore_create=True)  # a store that drops If-None-Match
    assert ignores.conditional_writes is False
    assert ignores.put_once(KEY, b"one") is True
    with pytest.raises(RawObjectExistsError):
        ignores.put_once(KEY, b"two")
    keys = [o["Key"] for o in _boto(s3_endpoint).list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert keys == ["b/" + KEY]  # the probes are gone


def test_bad_conditional_write_setting_is_a_config_error(s3_bucket: str) -> None:
    with pytest.raises(ConfigError, match="LAKEBOX_S3_CONDITIONAL_WRITES"):
        S3Lake(f"s3://{s3_bucket}/lake", {**_env(), "LAKEBOX_S3_CONDITIONAL_WRITES": "maybe"})


def test_land_list_snapshot_and_read_with_duckdb(s3_bucket: str) -> None:
    import duckdb

    lake = lake_for_url(f"s3://{s3_bucket}/lake", _env())
    manifest = lake.land_batch("orders", b'{"records":[{"order_id":"A","amount":1.5},{"order_id":"B","amount":2}]}',
                               "json", rows=2)
    assert lake.land_batch("orders", b'{"records":[{"order_id":"A","amount":1.5},{"order_id":"B","amount":2}]}',
                           "json", rows=2).key == manifest.key  # landing again is a no-op
    assert lake.list("raw/orders") == sorted([manifest.key, manifest.key.replace(".json", ".manifest.json")])
    assert lake.read_manifest(manifest.key.replace(".json", ".manifest.json")).rows == 2
    lake.overwrite("snapshots/m/snapshot_date=2026-01-01/m.parquet", b"v1")
    lake.overwrite("snapshots/m/snapshot_date=2026-01-01/m.parquet", b"v2")
    assert lake.read_bytes("snapshots/m/snapshot_date=2026-01-01/m.parquet") == b"v2"
    with pytest.raises(LakeError, match="raw zone is write-once"):
        lake.overwrite(manifest.key, b"x")

    con = duckdb.connect()
    lake.register_with(con)
    lake.register_with(con)  # idempotent
    rows = con.execute(
        f"select unnest(records, recursive := true) from read_json('{lake.uri(manifest.key)}', format = 'auto')"
    ).fetchall()
    assert rows == [("A", 1.5), ("B", 2.0)]


def test_duckdb_fetches_a_raw_object_once_and_derived_objects_fresh(s3_bucket: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    lake = lake_for_url(f"s3://{s3_bucket}/lake", _env())
    page = lake.land_batch("orders", b'{"records":[{"order_id":"A"}]}', "json").key
    lake.overwrite("snapshots/m/m.json", b'{"v": 1}')
    fetched: list[str] = []
    cat_file = lake.fs.cat_file
    monkeypatch.setattr(lake.fs, "cat_file", lambda path, *a, **kw: fetched.append(path) or cat_file(path, *a, **kw))
    con = duckdb.connect()
    lake.register_with(con)
    uri = lake.uri(page)
    assert con.execute(f"select count(*) from read_text('{uri}')").fetchone() == (1,)
    assert con.execute(f"select unnest(records, recursive := true) from read_json('{uri}')").fetchall() == [("A",)]
    assert fetched == [lake.path(page)]  # one GET served every open, size and read of both queries
    assert con.execute(f"select * from read_json('{lake.uri('raw/orders/*/*.manifest.json')}')").fetchone()
    assert con.execute(f"select v from read_json('{lake.uri('snapshots/m/m.json')}')").fetchall() == [(1,)]
    lake.overwrite("snapshots/m/m.json", b'{"v": 2}')
    assert con.execute(f"select v from read_json('{lake.uri('snapshots/m/m.json')}')").fetchall() == [(2,)]


def test_missing_objects_and_buckets_are_lake_errors(s3_bucket: str) -> None:
    lake = lake_for_url(f"s3://{s3_bucket}/lake", _env())
    with pytest.raises(LakeError, match="missing"):
        lake.read_bytes("raw/none.json")
    with pytest.raises(LakeError, match=r"the bucket 'no-such-bucket-x' does not exist at http://127\.0\.0\.1"):
        lake_for_url("s3://no-such-bucket-x/lake", _env())
    assert isinstance(lake_for_url("s3://no-such-bucket-x/lake", _env(), check=False), S3Lake)


def test_unreachable_endpoint_fails_fast_with_one_clear_line(s3_bucket: str) -> None:
    env = {**_env(), "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    with pytest.raises(LakeError) as caught:
        lake_for_url(f"s3://{s3_bucket}/lake", env)
    assert str(caught.value) == (f"cannot reach the S3 endpoint http://127.0.0.1:1 for lake s3://{s3_bucket}/lake: "
                                 "connection refused; is the server running? check AWS_ENDPOINT_URL")


def test_fs_for_url_gives_landing_filesystems(s3_bucket: str, tmp_path: Path) -> None:
    fs, root = fs_for_url(f"s3://{s3_bucket}/landing/", _env())
    fs.pipe_file(f"{root}/retail/2026-01-01/sales.csv", b"a,b\n1,2\n")
    assert fs.cat_file(f"{s3_bucket}/landing/retail/2026-01-01/sales.csv") == b"a,b\n1,2\n"
    assert root == f"{s3_bucket}/landing"
    local, local_root = fs_for_url(str(tmp_path / "landing"), {})
    local.makedirs(f"{local_root}/retail", exist_ok=True)
    assert local_root == str(tmp_path / "landing") and local.isdir(f"{local_root}/retail")


def test_objects_changed_or_deleted_behind_the_lake_are_found_on_s3(s3_bucket: str, s3_endpoint: str) -> None:
    from lakebox.lake.verify import Recorded, differences, verify_lake

    lake = S3Lake(f"s3://{s3_bucket}/lake", _env())
    kept, changed, gone = (lake.land_batch("orders", f'{{"n": {i}}}'.encode(), "json") for i in range(3))
    s3 = _boto(s3_endpoint)
    s3.put_object(Bucket=s3_bucket, Key="lake/" + changed.key, Body=b'{"n": 9}')  # same size, other bytes
    s3.delete_object(Bucket=s3_bucket, Key="lake/" + gone.key)
    found = differences(lake, [Recorded(m.key, m.sha256, m.bytes, m.batch_id) for m in (kept, changed, gone)])
    assert [(d.batch_id, d.problem) for d in found] == [(changed.batch_id, "sha256"), (gone.batch_id, "missing")]
    report = verify_lake(lake, "raw/orders", [])
    assert sorted((d.key, d.problem) for d in report.differences) == sorted(
        [(changed.key, "sha256"), (gone.key, "missing")])
