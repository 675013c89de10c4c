"""An object is never left in the raw zone without its manifest: a full disk between the
object and its manifest removes the object again; one a hard crash left behind is reported
by `lakebox lake verify` with its fix, `lakebox lake forget-object PATH --reason ...`, which
sets it aside under forgotten/. A batch marked lost is listed by verify, not checked."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from lakebox.errors import LakeError
from lakebox.lake import Lake
from lakebox.lake.verify import verify_lake
from tests.lake.test_full_disk import leftovers, small_disk  # noqa: F401  (small_disk: the fixture)
from tests.lake.test_integrity import Home, change_amounts, page


def test_a_full_disk_between_object_and_manifest_leaves_no_object(small_disk: Path) -> None:  # noqa: F811
    lake = Lake(str(small_disk / "lake"))
    os.makedirs(small_disk / "lake" / "raw" / "orders", exist_ok=True)
    stats = os.statvfs(small_disk)
    room = stats.f_bavail * stats.f_frsize  # the object fits exactly: its manifest does not
    with pytest.raises(LakeError, match="disk is full") as caught:
        lake.land_batch("orders", b"x" * room, "json")
    assert ".manifest.json" in str(caught.value) and "nothing partial was left behind" in str(caught.value)
    assert [p for p in (small_disk / "lake").rglob("*") if p.is_file()] == []  # no object without its manifest
    assert leftovers(small_disk) == []
    assert verify_lake(lake, "raw", []).differences == []
    again = lake.land_batch("orders", b'{"records": []}', "json")  # the space came back
    assert lake.exists(again.key) and lake.exists(again.key.replace(".json", ".manifest.json"))


def test_an_unrecorded_object_is_set_aside_with_forget_object(tmp_path: Path) -> None:
    home = Home(tmp_path, None)
    (kept,) = home.land(page(0))
    manifest = home.lake.land_batch("orders", page(100), "json")  # a hard crash between object and manifest:
    home.file(manifest.key.replace(".json", ".manifest.json")).unlink()
    stray = home.file(manifest.key)

    code, out = home.cli("lake", "verify")
    assert code == 1 and "unrecorded" in out and str(stray) in out, out
    assert "lakebox lake forget-object PATH --reason" in out and "restore BATCH_ID" not in out, out

    code, out = home.cli("lake", "forget-object", str(stray))
    assert code != 0 and "--reason" in out and stray.exists()
    code, out = home.cli("lake", "forget-object", str(home.file(kept.key)), "--reason", "not unrecorded")
    assert code == 2 and "is recorded" in out and home.file(kept.key).exists(), out

    code, out = home.cli("lake", "forget-object", str(stray), "--reason", "crashed before its manifest")
    assert code == 0, out
    assert not stray.exists()
    aside = home.file("forgotten/" + manifest.key.removeprefix("raw/"))
    assert aside.read_bytes() == page(100)  # the bytes are kept, out of the raw zone
    why = orjson.loads(Path(f"{aside}.forgotten.json").read_bytes())
    assert why["key"] == manifest.key and why["reason"] == "crashed before its manifest"
    assert why["sha256"] == manifest.sha256 and why["bytes"] == manifest.bytes

    code, out = home.cli("lake", "verify")
    assert code == 0, out


def test_a_lost_batch_whose_object_was_edited_is_listed_not_checked(tmp_path: Path) -> None:
    home = Home(tmp_path, None)
    good, edited = home.land(page(0), page(100))
    home.file(edited.key).write_bytes(change_amounts(page(100)))
    code, out = home.cli("lake", "forget-batch", edited.batch_id, "--reason", "edited by hand, original gone")
    assert code == 0, out
    code, out = home.cli("lake", "verify")
    assert code == 0, out
    assert "unrecorded" not in out and "0 difference(s)" in out
    assert f"lost       batch {edited.batch_id}" in out and "edited by hand, original gone" in out
    assert home.status() == {good.batch_id: "landed", edited.batch_id: "lost"}
