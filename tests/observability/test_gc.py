"""`lakebox gc`: --dry-run lists, and gc removes, exactly the expired items; raw/ and
quarantine/ are never touched."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from lakebox.observability.gc import collect_garbage
from lakebox.settings import Settings
from tests.conftest import run_cli

DAY = 86_400


def put(path: Path, age_days: float, size: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_days * DAY
    os.utime(path, (when, when))
    return path


def home_with_history(home: Path) -> tuple[set[str], set[str]]:
    """Expired and kept items (as gc names them: paths, or lake keys for snapshots)."""
    lake = home / "lake"
    today = dt.date.today()
    day = lambda n: (today - dt.timedelta(days=n)).isoformat()  # noqa: E731
    expired = {
        str(put(home / "logs" / f"lakebox-{day(40)}.jsonl", 40)),
        str(put(home / "dbt" / "target" / "run_results.json", 35)),
        str(put(home / "dbt" / "target" / "compiled" / "lakebox" / "models" / "x.sql", 35)),
        str(put(home / "dbt" / "logs" / "dbt.log.1", 45)),
    }
    for key, age in ((f"snapshots/daily/snapshot_date={day(60)}/daily.parquet", 60),
                     (f"snapshots/daily/snapshot_date={day(31)}/daily.parquet", 31)):
        put(lake / key, age)
        expired.add(key)
    kept = {
        str(put(home / "logs" / f"lakebox-{day(0)}.jsonl", 0)),
        str(put(home / "logs" / f"lakebox-{day(10)}.jsonl", 10)),
        str(put(home / "dbt" / "target" / "partial_parse.msgpack", 90)),  # dbt's parse state: keeps builds warm
        str(put(home / "dbt" / "target" / "manifest.json", 90)),
        str(put(home / "dbt" / "logs" / "dbt.log", 1)),
        str(put(home / "dbt" / "profiles.yml", 90)),
        str(put(home / "warehouse.duckdb", 90)),
    }
    for key, age in ((f"snapshots/daily/snapshot_date={day(5)}/daily.parquet", 5),  # recent
                     (f"snapshots/stores/snapshot_date={day(80)}/stores.parquet", 80),  # the newest of its model
                     (f"raw/orders/ingest_date={day(90)}/abc.json", 90),
                     (f"raw/orders/ingest_date={day(90)}/abc.manifest.json", 90),
                     (f"quarantine/orders/ingest_date={day(90)}/bad.json", 90),
                     (f"quarantine/orders/ingest_date={day(90)}/bad.json.errors.json", 90)):
        put(lake / key, age)
        kept.add(key)
    return expired, kept


def present(home: Path, items: set[str]) -> set[str]:
    return {i for i in items if (Path(i) if i.startswith("/") else home / "lake" / i).exists()}


def listed(stdout: str, verb: str) -> set[str]:
    return {line[len(verb):].split()[1] for line in stdout.splitlines()
            if line.startswith(verb + " ") and "item(s)" not in line}


@pytest.mark.slow
def test_dry_run_lists_and_gc_removes_exactly_the_expired_items(lakebox_env: dict[str, str]) -> None:
    home = Path(lakebox_env["LAKEBOX_HOME"])
    expired, kept = home_with_history(home)
    dry = run_cli("gc", "--older-than", "30d", "--dry-run", env=lakebox_env)
    assert dry.returncode == 0, dry.stderr
    assert listed(dry.stdout, "would remove") == expired
    assert "would remove 6 item(s); 600 B would be freed" in dry.stdout
    assert present(home, expired | kept) == expired | kept, "a dry run removes nothing"

    done = run_cli("gc", "--older-than", "30d", env=lakebox_env)
    assert done.returncode == 0, done.stderr
    assert listed(done.stdout, "removed") == expired
    assert "removed 6 item(s); 600 B freed" in done.stdout
    assert present(home, expired | kept) == kept
    assert not (home / "dbt" / "target" / "compiled").exists(), "emptied folders go too"

    again = run_cli("gc", "--older-than", "30d", env=lakebox_env)
    assert "nothing older than 30d to remove" in again.stdout


def test_a_bad_duration_is_refused_naming_the_option(lakebox_env: dict[str, str]) -> None:
    done = run_cli("gc", "--older-than", "a month", env=lakebox_env)
    assert done.returncode == 2 and "--older-than" in done.stderr and "30d" in done.stderr


@pytest.mark.slow
def test_mlflow_runs_no_registered_version_uses_are_removed(lakebox_env: dict[str, str]) -> None:
    MlflowClient = pytest.importorskip("mlflow.tracking").MlflowClient
    settings = Settings.load()
    uri = f"sqlite:///{settings.home / 'mlflow.db'}"
    settings.home.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("commits", artifact_location=str(settings.home / "mlartifacts"))
    old = int((time.time() - 40 * DAY) * 1000)

    def finished_run(name: str, ended_ms: int) -> str:
        run = client.create_run(experiment, run_name=name, start_time=ended_ms - 1000)
        artifacts = Path(run.info.artifact_uri)
        put(artifacts / "model" / "model.skops", 0, 1000)
        client.set_terminated(run.info.run_id, end_time=ended_ms)
        return run.info.run_id

    champion = finished_run("champion", old)
    orphan = finished_run("orphan", old)
    recent = finished_run("recent", int(time.time() * 1000))
    client.create_registered_model("commit_classifier")
    client.create_model_version("commit_classifier", source=f"runs:/{champion}/model", run_id=champion)

    found = collect_garbage(settings, 30 * DAY, dry_run=True)
    assert [(i.kind, i.where.split()[0], i.bytes) for i in found] == [("mlflow-run", orphan, 1000)]
    assert client.get_run(orphan).info.lifecycle_stage == "active"
    collect_garbage(settings, 30 * DAY, dry_run=False)
    assert client.get_run(orphan).info.lifecycle_stage == "deleted"
    assert client.get_run(champion).info.lifecycle_stage == "active"
    assert client.get_run(recent).info.lifecycle_stage == "active"
    assert not Path(client.get_run(orphan).info.artifact_uri).exists()
    assert Path(client.get_run(champion).info.artifact_uri).exists()


def test_no_mlflow_database_is_fine(lakebox_env: dict[str, str]) -> None:
    settings = Settings.load()
    assert collect_garbage(settings, 30 * DAY, dry_run=True) == []
