"""`lakebox gc`: free the space that only grows, never what cannot be rebuilt.

Removed once older than the cutoff: log files, dbt's per-run artifacts and logs under
$LAKEBOX_HOME (its parse state stays, so the next build stays warm), snapshot partitions
superseded by a newer one of the same model, and MLflow runs no registered model version
refers to. The raw lake and quarantine are write-once and never looked at: every path
removed is checked to sit under logs/, dbt/ or the lake's snapshots/.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from lakebox.lake import Lake
    from lakebox.settings import Settings

# dbt's state between builds: removing it would only cost the next build a full parse
KEEP_DBT = {"partial_parse.msgpack", "manifest.json", "semantic_manifest.json", "profiles.yml"}
_SNAPSHOT_DATE = "snapshot_date="


@dataclass(frozen=True)
class Expired:
    kind: str  # log | dbt | snapshot | mlflow-run
    where: str  # a path, lake key or run id, secrets redacted
    bytes: int


def local_files(settings: Settings, cutoff: float) -> Iterator[tuple[Expired, Path]]:
    """Log files and dbt artifacts last written before `cutoff` (unix time)."""
    logs = settings.logs_dir
    if logs.is_dir():
        for path in sorted(logs.glob("*.jsonl")):
            stat = path.stat()
            if stat.st_mtime < cutoff:
                yield Expired("log", str(path), stat.st_size), path
    dbt = settings.home / "dbt"
    for folder in (dbt / "target", dbt / "logs"):
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            stat = path.stat()
            if path.name not in KEEP_DBT and stat.st_mtime < cutoff:
                yield Expired("dbt", str(path), stat.st_size), path


def superseded_snapshots(lake: Lake, cutoff_day: dt.date) -> Iterator[tuple[Expired, str]]:
    """Each model's snapshot partitions dated before `cutoff_day`, except its newest."""
    partitions: dict[str, dict[str, list[str]]] = {}
    for key in lake.list("snapshots"):
        parts = key.split("/")
        if len(parts) < 4 or parts[0] != "snapshots" or not parts[2].startswith(_SNAPSHOT_DATE):
            continue
        partitions.setdefault(parts[1], {}).setdefault(parts[2][len(_SNAPSHOT_DATE):], []).append(key)
    for _model, by_day in sorted(partitions.items()):
        newest = max(by_day)
        for day, keys in sorted(by_day.items()):
            try:
                old = dt.date.fromisoformat(day) < cutoff_day
            except ValueError:
                continue  # not a partition lakebox wrote
            if day != newest and old:
                for key in keys:
                    yield Expired("snapshot", key, int(lake.fs.size(lake.path(key)) or 0)), key


def orphan_mlflow_runs(settings: Settings, cutoff: float) -> Iterator[tuple[Expired, Any]]:
    """Finished MLflow runs, ended before `cutoff`, that no registered model version uses."""
    from lakebox.ml.tracking import tracking_uri

    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return
    try:
        from mlflow.entities import ViewType
        from mlflow.tracking import MlflowClient
    except ImportError:
        from lakebox.log import get_logger

        get_logger().warning("MLflow is not installed: its runs were left alone", tracking_uri=uri)
        return

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    used = {v.run_id for m in client.search_registered_models()
            for v in client.search_model_versions(f"name = '{m.name}'")}
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not experiments:
        return
    cutoff_ms = int(cutoff * 1000)
    token = None
    while True:
        page = client.search_runs(experiments, filter_string=f"attributes.end_time < {cutoff_ms}",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        for run in page:
            if run.info.run_id in used or run.info.status == "RUNNING":
                continue
            artifacts = _local_dir(run.info.artifact_uri)
            size = sum(p.stat().st_size for p in artifacts.rglob("*") if p.is_file()) if artifacts else 0
            yield Expired("mlflow-run", f"{run.info.run_id} ({run.info.run_name})", size), (client, run, artifacts)
        token = page.token
        if not token:
            return


def _local_dir(uri: str | None) -> Path | None:
    if not uri:
        return None
    path = Path(uri.removeprefix("file://")) if uri.startswith("file://") or uri.startswith("/") else None
    return path if path is not None and path.is_dir() else None


def collect_garbage(settings: Settings, older_than_s: float, dry_run: bool,
                    now: float | None = None) -> list[Expired]:
    """Find (and unless `dry_run`, remove) everything expired; what was found."""
    import shutil

    from lakebox.lake import Lake

    now = time.time() if now is None else now
    cutoff = now - older_than_s
    found: list[Expired] = []
    home = settings.home.resolve()
    for item, path in local_files(settings, cutoff):
        if not path.resolve().is_relative_to(home):
            continue
        found.append(item)
        if not dry_run:
            path.unlink(missing_ok=True)
    if not dry_run:
        _drop_empty_dirs(settings.home / "dbt" / "target")
        _drop_empty_dirs(settings.home / "dbt" / "logs")
    lake = Lake.from_settings(settings)
    cutoff_day = dt.datetime.fromtimestamp(cutoff, dt.UTC).date()
    for item, key in list(superseded_snapshots(lake, cutoff_day)):
        assert key.startswith("snapshots/"), key  # never raw/ or quarantine/
        found.append(item)
        if not dry_run:
            lake.fs.rm(lake.path(key))
    for item, (client, run, artifacts) in list(orphan_mlflow_runs(settings, cutoff)):
        found.append(item)
        if not dry_run:
            client.delete_run(run.info.run_id)
            if artifacts is not None:
                shutil.rmtree(artifacts, ignore_errors=True)
    return found


def _drop_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def gc(
    older_than: Annotated[str, typer.Option(help="age past which things go, e.g. 30d, 12h")] = "30d",
    dry_run: Annotated[bool, typer.Option(help="list what would be removed; remove nothing")] = False,
) -> None:
    """Remove old logs, dbt artifacts, superseded snapshots and unused MLflow runs (never raw/ or quarantine/)."""
    from lakebox.errors import LakeboxError
    from lakebox.observability.sla import parse_duration
    from lakebox.settings import Settings, redact

    try:
        settings = Settings.load()
        found = collect_garbage(settings, parse_duration(older_than, "--older-than"), dry_run)
    except LakeboxError as exc:
        typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(getattr(exc, "exit_code", 1)) from exc
    verb = "would remove" if dry_run else "removed"
    for item in found:
        typer.echo(f"{verb} {item.kind:10} {redact(item.where)}  ({_size(item.bytes)})")
    total = sum(i.bytes for i in found)
    freed = "would be freed" if dry_run else "freed"
    typer.echo(f"{verb} {len(found)} item(s); {_size(total)} {freed}" if found
               else f"nothing older than {older_than} to remove")
