"""Retail with its landing zone and its lake on S3 (moto's server on loopback)."""

from __future__ import annotations

import os
from pathlib import Path

import boto3

from lakebox.lake import Lake
from lakebox.pipelines.retail.generator import generate_drops
from lakebox.pipelines.retail.pipeline import INGEST_ONLY
from lakebox.runner import run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse


def test_drops_on_s3_land_in_an_s3_lake_and_load(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    landing, lake_url = f"s3://{s3_bucket}/landing", f"s3://{s3_bucket}/lake"
    generate_drops(f"{landing}/retail", stores=3, months=1, seed=5, start="2026-01-01")
    env = {**os.environ, "LAKEBOX_HOME": str(tmp_path), "LAKEBOX_LANDING": landing, "LAKEBOX_LAKE": lake_url}
    settings = Settings.load(env=env, cwd=tmp_path)
    lake = Lake.from_settings(settings)
    with open_warehouse(settings) as wh:
        outcome = run_pipeline(INGEST_ONLY, settings, lake, wh)
        assert outcome.status == "success", outcome.error
        loaded = wh.query("select count(*), sum(rows) from ops.batches where status = 'loaded'")[0]
        sales = wh.query("select count(*) from raw.retail_daily_sales")[0][0]
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    dropped = s3.list_objects_v2(Bucket=s3_bucket, Prefix="landing/retail/")["KeyCount"]
    raw = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="lake/raw/retail/")["Contents"]]
    assert loaded[0] == dropped  # every file dropped on S3 was landed and loaded
    assert len([k for k in raw if not k.endswith(".manifest.json")]) == dropped
    assert sales == 3 * 31 * 6  # stores × days × categories


def test_the_watchers_fingerprint_of_an_s3_landing_sees_new_and_changed_files(
    tmp_path: Path, s3_bucket: str, s3_endpoint: str
) -> None:
    from lakebox.pipelines.retail.source import landing_fingerprint

    landing = f"s3://{s3_bucket}/landing"
    env = {**os.environ, "LAKEBOX_HOME": str(tmp_path), "LAKEBOX_LANDING": landing}
    settings = Settings.load(env=env, cwd=tmp_path)
    store_system = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")  # another client

    def put(name: str, body: bytes) -> None:
        store_system.put_object(Bucket=s3_bucket, Key=f"landing/retail/{name}", Body=body)

    assert landing_fingerprint(settings) == ()  # no folder yet
    put("stores.csv", b"store_id\n1\n")
    put(".daily_sales_2026-01-01.csv.part", b"still being written")
    first = landing_fingerprint(settings)
    assert [name for name, _ in first] == ["stores.csv"]  # dot-files are not input yet
    assert landing_fingerprint(settings) == first  # nothing changed
    put("daily_sales_2026-01-01.csv", b"date\n")
    added = landing_fingerprint(settings)
    assert [name for name, _ in added] == ["daily_sales_2026-01-01.csv", "stores.csv"]
    put("stores.csv", b"store_id\n1\n2\n")
    changed = landing_fingerprint(settings)
    assert changed != added and [name for name, _ in changed] == [name for name, _ in added]
