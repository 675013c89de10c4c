"""`lakebox lake`: check the raw lake against its manifests and the ledger, settle a
landed batch whose object went missing or changed (restore its bytes, or forget it), and
set aside an object nothing records (forget-object)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakebox.errors import ConfigError, LakeboxError, RawObjectExistsError
from lakebox.tables import Column

if TYPE_CHECKING:
    from lakebox.lake import Lake
    from lakebox.lake.verify import Difference
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

app = typer.Typer(help="The raw lake: verify it against manifests and the ledger; restore or forget a "
                  "landed batch whose object is missing or changed.", no_args_is_help=True)


def _fail(exc: BaseException) -> None:
    from lakebox.settings import redact

    typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
    raise typer.Exit(getattr(exc, "exit_code", 1))


def _settings() -> Settings:
    from lakebox.log import configure_logging
    from lakebox.settings import Settings

    settings = Settings.load()
    configure_logging(settings.logs_dir, settings.log_level)
    return settings


VERIFY_COLUMNS = (Column("problem", kind="status"), Column("batch", "batch_id", kind="id", drop=1),
                  Column("object", kind="id"), Column("detail"))


@app.command()
def verify(
    source: Annotated[str | None, typer.Argument(help="only this source (default: every source)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Check every object against its manifest and the ledger (missing, size, sha256); exit 1 on any difference.

    Loaded batches are checked too: a changed or deleted object is reported here. The
    differences are a table (tab-separated lines when piped); the totals go to stderr."""
    from lakebox import tables
    from lakebox.lake import Lake
    from lakebox.lake.verify import verify_lake
    from lakebox.warehouse import kind_of, open_warehouse
    from lakebox.warehouse.ops import ledger

    try:
        settings = _settings()
        lake = Lake.from_settings(settings)
        rows: list[tuple[Any, ...]] = []
        where = "no warehouse yet"
        if kind_of(settings).exists(settings.warehouse):
            with open_warehouse(settings, read_only=True) as warehouse:
                rows = ledger.recorded_batches(warehouse, source) if warehouse.table_exists("ops", "batches") else []
                where = warehouse.describe()
        prefix = f"raw/{source}" if source else "raw"
        report = verify_lake(lake, prefix, rows)
    except LakeboxError as exc:
        _fail(exc)
        return
    rows = [(d.problem, d.batch_id, d.key, d.detail) for d in report.differences]
    rows += [("lost", batch_id, key, f"not checked; forgotten: {reason}") for batch_id, key, reason in report.lost]
    found = tables.Table(VERIFY_COLUMNS, rows)
    if as_json:
        tables.print_json({"lake": lake.uri(prefix), "objects": report.objects, "batches": report.batches,
                           "unledgered_manifests": report.unledgered, "differences": found.records()})
    elif rows:
        tables.show(found)
    if report.unledgered and not as_json:
        typer.echo(f"note: {report.unledgered} manifest(s) under {prefix} belong to no batch in the ledger of {where} "
                   "(landed by another warehouse, or by a run that stopped before recording them); checked anyway",
                   err=True)
    if not as_json:
        typer.echo(f"checked {report.objects} object(s) under {lake.uri(prefix)}, {report.batches} batch(es) in the "
                   f"ledger of {where}: {len(report.differences)} difference(s)", err=True)
    if report.differences:
        problems = {d.problem for d in report.differences}
        if problems - {"unrecorded", "leftover"}:
            typer.echo("settle a pending batch with `lakebox lake restore BATCH_ID FILE` or `lakebox lake forget-batch "
                       "BATCH_ID --reason TEXT`; a loaded one's rows stay in the warehouse: restore its bytes from a "
                       "backup", err=True)
        if "unrecorded" in problems:
            typer.echo("an unrecorded object landed without its manifest (a crash or a full disk) and nothing loads "
                       "it; its source sends it again: set it aside with `lakebox lake forget-object PATH --reason "
                       "TEXT` (its bytes move to forgotten/ in the lake)", err=True)
        raise typer.Exit(1)


@app.command("forget-batch")
def forget_batch(
    batch_id: Annotated[str, typer.Argument(help="the batch's id, as the error or `lakebox lake verify` names it")],
    reason: Annotated[str, typer.Option(help="why its bytes are gone for good (kept in ops.batches)")],
) -> None:
    """Mark a batch whose lake object is missing or changed lost, with a reason; it never loads.

    The source's other batches go on. Refused while the object is intact."""
    import getpass

    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import ledger

    try:
        if not reason.strip():
            raise ConfigError("--reason must say why the batch's bytes are gone for good")
        settings = _settings()
        lake = _lake(settings)
        with open_warehouse(settings) as warehouse:
            batch = _batch(warehouse, batch_id)
            found = _difference(lake, batch)
            if found is None:
                raise ConfigError(f"batch {batch_id}: {lake.uri(batch[2])} is intact (sha256 {batch[3]}); "
                                  "nothing to forget")
            ledger.mark_lost(warehouse, batch_id, reason.strip(), getpass.getuser(), f"{found.problem}: {found.detail}")
    except LakeboxError as exc:
        _fail(exc)
        return
    typer.echo(f"batch {batch_id} of {batch[1]} marked lost (was {batch[5]}; {found.detail}): {reason.strip()}")


@app.command("forget-object")
def forget_object(
    path: Annotated[str, typer.Argument(help="the object as `lakebox lake verify` names it (or its key, raw/...)")],
    reason: Annotated[str, typer.Option(help="why it is set aside (kept beside it under forgotten/)")],
) -> None:
    """Set aside a raw object that no manifest or ledger row records (`lake verify`: unrecorded).

    Its bytes move to forgotten/ in the lake with the reason; its source sends it again.
    Refused for a recorded object: settle a batch with `restore` or `forget-batch`."""
    import getpass

    from lakebox.lake import forget
    from lakebox.warehouse import kind_of, open_warehouse
    from lakebox.warehouse.ops import ledger

    try:
        if not reason.strip():
            raise ConfigError("--reason must say why the object is set aside")
        settings = _settings()
        lake = _lake(settings)
        key = forget.lake_key(lake, path)
        recorded: set[str] = set()
        if kind_of(settings).exists(settings.warehouse):
            with open_warehouse(settings, read_only=True) as warehouse:
                if warehouse.table_exists("ops", "batches"):
                    source = key.split("/")[1] if key.count("/") >= 2 else None
                    recorded = {row[2] for row in ledger.recorded_batches(warehouse, source)}
        target = forget.forget_object(lake, key, reason, getpass.getuser(), recorded)
    except LakeboxError as exc:
        _fail(exc)
        return
    typer.echo(f"{lake.uri(key)} set aside as {lake.uri(target)}: {reason.strip()}")


@app.command()
def restore(
    batch_id: Annotated[str, typer.Argument(help="the batch's id, as the error or `lakebox lake verify` names it")],
    file: Annotated[Path, typer.Argument(help="a copy of the batch's original bytes", exists=True, dir_okay=False)],
) -> None:
    """Put a missing batch object's original bytes back; they must match the recorded sha256.

    A changed object is never overwritten: move it aside first."""
    import hashlib

    from lakebox.warehouse import open_warehouse

    try:
        settings = _settings()
        lake = _lake(settings)
        with open_warehouse(settings, read_only=True) as warehouse:
            batch = _batch(warehouse, batch_id)
        data = file.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != batch[3]:
            raise ConfigError(f"{file} is not batch {batch_id}: sha256 {sha256}, the ledger recorded {batch[3]}; "
                              "nothing was written")
        try:
            written = lake.put_once(batch[2], data)
        except RawObjectExistsError as exc:
            raise ConfigError(f"batch {batch_id}: {lake.uri(batch[2])} holds other bytes; the raw zone is never "
                              "overwritten: move that object aside yourself, then restore") from exc
    except LakeboxError as exc:
        _fail(exc)
        return
    typer.echo(f"batch {batch_id}: {lake.uri(batch[2])} " + ("restored" if written else "was already intact"))


def _lake(settings: Settings) -> Lake:
    from lakebox.lake import Lake

    return Lake.from_settings(settings)


def _batch(warehouse: Warehouse, batch_id: str) -> tuple[Any, ...]:
    """(batch_id, source, lake_path, sha256, bytes, status, error) of a batch the ledger knows."""
    from lakebox.warehouse.ops import ledger

    found = ledger.get_batch(warehouse, batch_id.strip()) if warehouse.table_exists("ops", "batches") else None
    if found is None:
        raise ConfigError(f"no batch {batch_id!r} in the ledger (ops.batches); see `lakebox lake verify`")
    if found[5] == ledger.LOST:
        raise ConfigError(f"batch {batch_id} is already marked lost: {found[6]}")
    return found


def _difference(lake: Lake, batch: tuple[Any, ...]) -> Difference | None:
    from lakebox.lake.verify import Recorded, compare

    return compare(Recorded(batch[2], batch[3], batch[4], batch[0]), lake.digest(batch[2]))
