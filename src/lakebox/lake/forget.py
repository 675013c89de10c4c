"""Setting aside a raw object that nothing records (no manifest, no ledger row): one a hard
crash left between writing an object and its manifest. Nothing can load it, and its source
sends it again (the ledger never recorded it, so its cursor never moved past it), but the
raw zone is never deleted: the bytes move to `forgotten/<the key under raw/>` with a
`.forgotten.json` beside them saying why, who and when."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from typing import TYPE_CHECKING

import orjson

from lakebox.errors import ConfigError
from lakebox.lake.verify import MANIFEST_SUFFIX

if TYPE_CHECKING:
    from lakebox.lake.store import Lake

FORGOTTEN = "forgotten"


def lake_key(lake: Lake, path: str) -> str:
    """The lake key of `path`: a key (`raw/...`) or the location `lakebox lake verify` printed."""
    path = path.strip()
    for prefix in (lake.uri("").rstrip("/") + "/", lake.path("").rstrip("/") + "/"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path.lstrip("/")


def forget_object(lake: Lake, key: str, reason: str, by: str, ledger_keys: Collection[str]) -> str:
    """Move the unrecorded raw object `key` to forgotten/, with why; returns its new key.
    Refused for anything a manifest or the ledger records (`lakebox lake forget-batch`)."""
    if not reason.strip():
        raise ConfigError("--reason must say why the object is set aside")
    if not key.startswith("raw/") or key.endswith((MANIFEST_SUFFIX, ".tmp")):
        raise ConfigError(f"{key} is not a raw batch object; forget-object sets aside an object under raw/ that "
                          "`lakebox lake verify` reports as unrecorded (a leftover .tmp file is simply deleted)")
    manifest_key = key.rsplit(".", 1)[0] + MANIFEST_SUFFIX
    if key in ledger_keys or lake.exists(manifest_key):
        raise ConfigError(f"{lake.uri(key)} is recorded (a manifest or a ledger row names it), so it is not "
                          "unrecorded; settle a batch with `lakebox lake restore` or `lakebox lake forget-batch`")
    if not lake.exists(key):
        raise ConfigError(f"no object {lake.uri(key)} in the lake; see `lakebox lake verify`")
    data = lake.read_bytes(key)
    target = f"{FORGOTTEN}/{key.removeprefix('raw/')}"
    lake.put_once(target, data)
    now = dt.datetime.now(dt.UTC)
    why = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "reason": reason.strip(),
           "by": by, "at": now.isoformat()}
    why_key = f"{target}.forgotten.json"
    if lake.exists(why_key):  # the same bytes landed and were set aside before: keep both reasons
        why_key = f"{target}.{now:%Y%m%dT%H%M%S%f}.forgotten.json"
    lake.put_once(why_key, orjson.dumps(why, option=orjson.OPT_INDENT_2))
    lake.fs.rm_file(lake.path(key))  # only once its bytes and the reason are kept under forgotten/
    return target
