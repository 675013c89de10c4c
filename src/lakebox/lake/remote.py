"""Choosing the filesystem for a lake URL: local disk by default, S3/MinIO by URL.

On S3 the raw zone stays write-once in one of two ways:
- conditional create (`If-None-Match: *`): the store itself refuses a second write of a
  key, so two writers can never both win (AWS S3, MinIO, recent moto);
- verify before write: look, then write; for stores that ignore the header.
LAKEBOX_S3_CONDITIONAL_WRITES=auto|on|off chooses; `auto` probes the store once, on the
first raw write, with a scratch key under `_lakebox/` that it deletes again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from fsspec import AbstractFileSystem

from lakebox.core_settings import S3_CONDITIONAL_WRITES
from lakebox.errors import LakeboxError, LakeError
from lakebox.lake.store import Lake
from lakebox.settings import redact

ConditionalWrites = Literal["auto", "on", "off"]
PROBE_PREFIX = "_lakebox/conditional-write-probe"
READ_CACHE_BYTES = 128 << 20


def lake_for_url(url: str, env: Mapping[str, str], check: bool = True) -> Lake:
    """The lake at `url`; with `check`, fail now (LakeError) if it cannot be reached."""
    if url.startswith(("s3://", "s3a://")):
        s3 = S3Lake(url, env)
        if check:
            s3.check()
        return s3
    try:
        return Lake(url)
    except OSError as exc:
        raise LakeError(f"cannot create the lake folder {url}: {exc.strerror or exc}; check LAKEBOX_LAKE") from exc


def fs_for_url(url: str, env: Mapping[str, str]) -> tuple[Any, str]:
    """(fsspec filesystem, root path) for any lakebox location: a folder, or s3://bucket/prefix.

    Landing folders use it, so a drop zone on S3/MinIO works like one on disk.
    """
    import fsspec.core

    options = s3_storage_options(env) if url.startswith(("s3://", "s3a://")) else {}
    fs, root = fsspec.core.url_to_fs(url.rstrip("/"), **options)
    return fs, root


def s3_storage_options(env: Mapping[str, str]) -> dict[str, Any]:
    """Endpoint from AWS_ENDPOINT_URL (MinIO, moto); credentials from the AWS variables.

    No region in client_kwargs: s3fs's mkdir fails against moto when one is set.
    """
    options: dict[str, Any] = {}
    endpoint = s3_endpoint(env)
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    if env.get("AWS_ACCESS_KEY_ID"):
        options["key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret"] = env.get("AWS_SECRET_ACCESS_KEY", "")
    if env.get("AWS_SESSION_TOKEN"):
        options["token"] = env["AWS_SESSION_TOKEN"]
    return options


def s3_endpoint(env: Mapping[str, str]) -> str | None:
    return env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3") or None


class S3Lake(Lake):
    """A lake on S3 or an S3-compatible store; every failure becomes a LakeError naming it."""

    def __init__(self, url: str, env: Mapping[str, str], conditional_writes: ConditionalWrites | None = None) -> None:
        self.env = env
        self.endpoint = s3_endpoint(env) or "AWS S3"
        mode = conditional_writes or S3_CONDITIONAL_WRITES.read(env)
        self.conditional_mode: ConditionalWrites = mode  # type: ignore[assignment]
        self._conditional: bool | None = {"on": True, "off": False}.get(mode)
        self._options = s3_storage_options(env)
        self._read_cache: ImmutableReadCache | None = None
        super().__init__(url, storage_options=self._options)

    @property
    def bucket(self) -> str:
        return self.root.split("/", 1)[0]

    @property
    def conditional_writes(self) -> bool:
        """Whether raw writes use `If-None-Match: *` (probed once in auto mode)."""
        if self._conditional is None:
            self._conditional = self._probe_conditional_writes()
        return self._conditional

    # ---------------------------------------------------------------- preflight
    def check(self) -> None:
        """One quick LIST of the lake's prefix, with no retries: fails fast and says why."""
        import fsspec.asyn
        import s3fs

        prefix = self.root.split("/", 1)[1] if "/" in self.root else ""
        quick = s3fs.S3FileSystem(
            **self._options, skip_instance_cache=True,
            config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 5, "read_timeout": 15},
        )
        quick.retries = 1
        try:
            fsspec.asyn.sync(quick.loop, quick._call_s3, "list_objects_v2",
                             Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except Exception as exc:  # botocore/s3fs errors of every kind become one clear line
            raise self._error(exc, "list") from exc

    def register_with(self, con: Any) -> None:
        """Let DuckDB read the lake through a filesystem that fetches each raw object once.

        DuckDB opens a file several times per query (list, open, size, modified, read),
        and a page is read twice (its shape, then its rows): over S3 that is a dozen
        requests for one object. Raw objects never change, so one GET serves them all,
        the check of its sha256 before it loads (`digest`) included.
        """
        if not con.filesystem_is_registered("s3"):
            con.register_filesystem(self.read_cache)

    @property
    def read_cache(self) -> ImmutableReadCache:
        """One cache of raw objects for this lake, shared by its DuckDB connections and `digest`."""
        if self._read_cache is None:
            self._read_cache = ImmutableReadCache(self.fs, f"{self.root}/raw/")
        return self._read_cache

    # ---------------------------------------------------------------- guarded access
    def exists(self, key: str) -> bool:
        with self._guard("check", key):
            return super().exists(key)

    def read_bytes(self, key: str) -> bytes:
        with self._guard("read", key):
            return super().read_bytes(key)

    def digest(self, key: str) -> tuple[str, int] | None:
        """A raw object is hashed from the read cache, so the bytes checked are the bytes
        DuckDB then loads, with one GET for both."""
        with self._guard("read", key):
            if not key.startswith("raw/"):
                return super().digest(key)
            try:
                data = self.read_cache.read(self.path(key))
            except FileNotFoundError:
                return None
            return hashlib.sha256(data).hexdigest(), len(data)

    def list(self, prefix: str) -> list[str]:
        with self._guard("list", prefix):
            return super().list(prefix)

    def overwrite(self, key: str, data: bytes) -> None:
        with self._guard("write", key):
            super().overwrite(key, data)

    def put_once(self, key: str, data: bytes, durable: bool = True) -> bool:
        """Write-once put; an S3 object is durable once the PUT returns, whatever `durable` says."""
        with self._guard("write", key):
            if not self.conditional_writes:
                return self._put_once_remote(key, data)  # verify before write
            try:
                self.fs.pipe_file(self.path(key), data, mode="create")
            except FileExistsError:  # 412: the key exists; same bytes are a no-op
                return self._same_or_fail(key, data)
            return True

    @contextmanager
    def _guard(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except LakeboxError:
            raise
        except Exception as exc:
            raise self._error(exc, action, key) from exc

    def _probe_conditional_writes(self) -> bool:
        probe = self.path(f"{PROBE_PREFIX}-{uuid.uuid4().hex}")
        with self._guard("write", PROBE_PREFIX):
            self.fs.pipe_file(probe, b"1")
            try:
                try:
                    self.fs.pipe_file(probe, b"2", mode="create")
                except FileExistsError:
                    return True
                except Exception:  # noqa: BLE001 - 501 NotImplemented and the like: the store cannot do it
                    return False
                return False
            finally:
                self.fs.rm(probe)

    def _error(self, exc: BaseException, action: str, key: str | None = None) -> LakeError:
        where = f"lake {redact(self.url, self.env)} at {self.endpoint}"
        what = f" ({action} {key})" if key else ""
        code, text = _s3_code(exc)
        lower = f"{code} {text}".lower()
        if "connect" in lower and ("endpoint" in lower or "refused" in lower or "could not" in lower):
            return LakeError(f"cannot reach the S3 endpoint {self.endpoint} for lake {redact(self.url, self.env)}: "
                             "connection refused; is the server running? check AWS_ENDPOINT_URL")
        if code in ("NoSuchBucket",) or (isinstance(exc, FileNotFoundError) and "bucket" in lower):
            return LakeError(f"the bucket {self.bucket!r} does not exist at {self.endpoint}; create it or fix "
                             "LAKEBOX_LAKE")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
                    "ExpiredToken", "Forbidden", "403") or isinstance(exc, PermissionError) \
                or "credentials" in lower:
            return LakeError(f"S3 at {self.endpoint} refused access to {where}{what}: "
                             f"{code or 'access denied'}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        return LakeError(f"{where}{what} failed: {redact(text, self.env)}")


def _s3_code(exc: BaseException) -> tuple[str, str]:
    """The S3 error code (e.g. NoSuchBucket) and message, looking through s3fs's wrapping."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and response.get("Error"):
            error = response["Error"]
            return str(error.get("Code", "")), str(error.get("Message", "") or seen)
        seen = seen.__cause__ or seen.__context__
    return "", f"{type(exc).__name__}: {exc}"


class ImmutableReadCache(AbstractFileSystem):  # type: ignore[misc]
    """An S3 filesystem for DuckDB: objects under `immutable_prefix` (the write-once raw
    zone) are fetched whole with one GET and kept in a small LRU cache; everything else
    goes to the wrapped filesystem unchanged."""

    protocol = ("s3", "s3a")
    cachable = False

    def __init__(self, fs: Any, immutable_prefix: str, max_bytes: int = READ_CACHE_BYTES) -> None:
        super().__init__()
        self._fs = fs
        self._prefix = immutable_prefix
        self._max_bytes = max_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def _immutable(self, path: str) -> bool:
        stripped: str = self._strip_protocol(path)  # fsspec is untyped
        return stripped.startswith(self._prefix)

    def read(self, path: str) -> bytes:
        """The whole object, from the cache when it holds it."""
        return self._data(path)

    def _data(self, path: str) -> bytes:
        path = self._strip_protocol(path)
        with self._lock:
            if path in self._cache:
                self._cache.move_to_end(path)
                return self._cache[path]
        data = bytes(self._fs.cat_file(path))
        with self._lock:
            if path not in self._cache and len(data) <= self._max_bytes:
                self._cache[path] = data
                self._cached_bytes += len(data)
                while self._cached_bytes > self._max_bytes:
                    _, dropped = self._cache.popitem(last=False)
                    self._cached_bytes -= len(dropped)
        return data

    def glob(self, path: str, **kwargs: Any) -> Any:
        if self._immutable(path) and not any(c in path for c in "*?["):
            try:
                self._data(path)
            except FileNotFoundError:
                return []
            return [self._strip_protocol(path)]
        return self._fs.glob(path, **kwargs)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode == "rb" and self._immutable(path):
            return io.BytesIO(self._data(path))
        return self._fs.open(path, mode, **kwargs)

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        if self._immutable(path):
            return {"name": self._strip_protocol(path), "size": len(self._data(path)), "type": "file"}
        return dict(self._fs.info(path, **kwargs))

    def modified(self, path: str) -> dt.datetime:
        if self._immutable(path):
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # never modified: written once
        return self._fs.modified(path)  # type: ignore[no-any-return]

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        return self._fs.ls(path, detail=detail, **kwargs)

    def exists(self, path: str, **kwargs: Any) -> bool:
        return bool(self._fs.exists(path, **kwargs))

    def isdir(self, path: str) -> bool:
        return bool(self._fs.isdir(path))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self._fs.mkdir(path, create_parents=create_parents, **kwargs)

    def rm(self, path: str, recursive: bool = False, maxdepth: int | None = None) -> None:
        self._fs.rm(path, recursive=recursive, maxdepth=maxdepth)

    def mv(self, path1: str, path2: str, **kwargs: Any) -> None:
        self._fs.mv(path1, path2, **kwargs)
