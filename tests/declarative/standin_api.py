"""A public-API-shaped stand-in for declarative REST pipelines: one known dataset served in
each of dlt's paging styles, behind each auth kind, and misbehaving on purpose.

Routes (GET, page size `SIZE` unless the request says `limit`):
  /v1/single                 the whole dataset as a bare JSON array
  /v1/header_link?page=N     bare arrays, `Link: <...>; rel="next"` echoing the whole query
  /v1/json_link?page=N       {"data": [...], "links": {"next": URL|null}}
  /v1/cursor?cursor=C        {"result": {"items": [...]}, "cursors": {"next": C|null}}
  /v1/offset?offset=&limit=  {"data": [...], "meta": {"total": N}}; /v1/offset_capped sends at
                             most CAP records a page and no total
  /v1/page_number?page=N     {"data": [...], "total_pages": P} from page 1; /v1/page_number0
                             from page 0; /v1/page_number_open without a total
  /v1/updates?since=T&page=N page_number over the records updated at or after `since`
  /v1/secure/<kind>          header_link paging behind a credential (`Credentials`); a wrong or
                             missing one gets 401 whose body echoes what was sent
  /v1/broken?page=N          page_number whose page 2 is cut short, always
  /v1/runaway_same           json_link whose next link is always the same
  /v1/runaway_new            a cursor that never ends
  /v1/flaky                  429 with Retry-After: 1 for the first request, then /v1/single
Anything else is a 404.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import duckdb
import orjson

from lakebox.declarative.config import PipelineConfig, load_config
from lakebox.declarative.rest import fetch, reader_for
from lakebox.lake import Lake
from lakebox.runner import Pipeline, RunOutcome, Stage, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.conftest import QuietHandler, serve_on_loopback

SIZE = 5
CAP = 3


def record(i: int) -> dict[str, Any]:
    return {"id": i, "Country Name": f"C{i}", "updated_at": f"2024-01-{i + 1:02d}T00:00:00Z", "Nested": {"x": i}}


@dataclass
class Credentials:
    """What /v1/secure/<kind> accepts: bearer, key_header (X-Api-Key), key_query (?api_key=), basic."""

    token: str = "tok-5a1b2c3d4e"
    key: str = "key/9z8y+7x6w=="  # a key whose URL spelling differs from itself
    user: str = "reader"
    password: str = "pw-q1w2e3r4t5"


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class StandInApi:
    """The dataset, the requests seen (in order) and the credentials expected."""

    url: str = ""
    records: list[dict[str, Any]] = field(default_factory=lambda: [record(i) for i in range(23)])
    seen: list[Request] = field(default_factory=list)
    credentials: Credentials = field(default_factory=Credentials)
    broken: bool = True  # /v1/broken's page 2 is cut short
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, count: int = 23) -> None:
        with self.lock:
            self.records, self.seen, self.broken = [record(i) for i in range(count)], [], True

    def asked(self, path: str) -> list[dict[str, str]]:
        """The queries of the requests for `path`, in order."""
        return [r.query for r in self.seen if r.path == path]


@contextmanager
def stand_in_api() -> Iterator[StandInApi]:
    api = StandInApi()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            with api.lock:
                api.seen.append(Request(parts.path, query, dict(self.headers), time.monotonic()))
                count = sum(1 for r in api.seen if r.path == parts.path)
                records = list(api.records)
            answer(self, api, parts.path, query, records, count)

        def json(self, doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
            self.send_json(status, orjson.dumps(doc), headers)

    with serve_on_loopback(Handler) as url:
        api.url = url
        yield api


def answer(h: Any, api: StandInApi, path: str, q: dict[str, str], records: list[dict[str, Any]], count: int) -> None:
    size = int(q.get("limit", SIZE))
    style = path.removeprefix("/v1/")
    if style in ("single", "flaky"):
        if style == "flaky" and count == 1:
            h.json({"message": "slow down"}, 429, {"Retry-After": "1"})
        else:
            h.json(records)
    elif style == "header_link" or style.startswith("secure/"):
        if style.startswith("secure/") and not authorised(h, api.credentials, style.split("/")[1], q):
            return
        page = int(q.get("page", "1"))
        following = urlencode({**q, "page": page + 1})  # like GitHub: the whole query, credentials and all
        more = page * SIZE < len(records)
        h.json(records[(page - 1) * SIZE: page * SIZE],
               headers={"Link": f'<{api.url}{path}?{following}>; rel="next"'} if more else {})
    elif style == "json_link":
        page = int(q.get("page", "1"))
        more = page * SIZE < len(records)
        h.json({"data": records[(page - 1) * SIZE: page * SIZE],
                "links": {"next": f"{api.url}{path}?page={page + 1}" if more else None}})
    elif style == "cursor":
        start = int(q["cursor"].removeprefix("after-")) + 1 if "cursor" in q else 0
        chunk = records[start: start + SIZE]
        more = start + SIZE < len(records)
        h.json({"result": {"items": chunk, "count": len(chunk)}, "cursors": {"next": f"after-{start + SIZE - 1}"
                                                                             if more else None}})
    elif style in ("offset", "offset_capped"):
        offset = int(q["offset"])
        chunk = records[offset: offset + min(size, CAP if style == "offset_capped" else size)]
        h.json({"data": chunk, **({} if style == "offset_capped" else {"meta": {"total": len(records)}})})
    elif style in ("page_number", "page_number0", "page_number_open", "updates", "broken"):
        base = 0 if style == "page_number0" else 1
        page = int(q["page"]) - base
        since = q.get("since", "")
        chosen = records if style != "updates" else [r for r in records if r["id"] >= int(since)] \
            if since.isdigit() else [r for r in records if r["updated_at"] >= since]
        if style == "broken" and page == 1 and api.broken:
            h.send_json(200, b'{"data": [{"id": 5')
            return
        doc: dict[str, Any] = {"data": chosen[page * SIZE: (page + 1) * SIZE]}
        if style != "page_number_open":
            doc["total_pages"] = -(-len(chosen) // SIZE)
        h.json(doc)
    elif style == "runaway_same":
        h.json({"data": records[:2], "page": q.get("page", "1"), "links": {"next": f"{api.url}{path}?page=2"}})
    elif style == "runaway_new":
        n = int(q.get("cursor", "0"))
        h.json({"result": {"items": records[:2]}, "cursors": {"next": str(n + 1)}})
    else:
        h.json({"message": "Not Found"}, 404)


def authorised(h: Any, expected: Credentials, kind: str, q: dict[str, str]) -> bool:
    """Whether the request carries `kind`'s credential; if not, a 401 echoing what it sent."""
    sent = {"bearer": h.headers.get("Authorization", ""), "key_header": h.headers.get("X-Api-Key", ""),
            "key_query": q.get("api_key", ""), "basic": h.headers.get("Authorization", "")}[kind]
    wanted = {"bearer": f"Bearer {expected.token}", "key_header": expected.key, "key_query": expected.key,
              "basic": "Basic " + base64.b64encode(f"{expected.user}:{expected.password}".encode()).decode()}[kind]
    if sent == wanted:
        return True
    h.json({"message": f"bad credentials: {sent!r}"}, 401)
    return False


# ------------------------------------------------------------------ running a pipeline's fetch
def pipeline(root: Path, toml: str, name: str = "stand") -> PipelineConfig:
    """A declarative pipeline folder holding `toml` as its pipeline.toml, parsed."""
    folder = root / "pipelines" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.toml").write_text(toml, encoding="utf-8")
    return load_config(folder)


@dataclass
class Fetched:
    """One run of the fetch stage, and what it left in the ledger and ops.source_state."""

    run: RunOutcome
    ledger: list[tuple[str, int | None, dict[str, Any], str, str]]  # source, rows, meta, lake_path, status
    state: dict[tuple[str, str], str]  # (source, key) -> value
    quarantine: list[tuple[str, str]]  # (source, status)

    def pages(self, source: str) -> list[int | None]:
        return [rows for s, rows, *_ in self.ledger if s == source]


def settings_for(home: Path, **env: str) -> Settings:
    return Settings.load(env={"LAKEBOX_HOME": str(home), "LAKEBOX_HTTP_BACKOFF": "0.01", **env}, cwd=home)


def run_fetch(home: Path, config: PipelineConfig, settings: Settings | None = None, **env: str) -> Fetched:
    """The fetch stage of `config` run as `lakebox run` runs it, on a real DuckDB warehouse and lake."""
    settings = settings or settings_for(home, **env)
    with open_warehouse(settings) as wh:
        run = run_pipeline(Pipeline(config.name, (Stage("fetch", lambda ctx: fetch(ctx, config)),)), settings,
                           Lake(settings.lake), wh)
        ledger = wh.query("select source, rows, meta, lake_path, status from ops.batches "
                          "order by landed_at, batch_id")
        state = wh.query("select source, state_key, value from ops.source_state")
        quarantine = wh.query("select source, status from ops.quarantine order by opened_at")
    return Fetched(run, [(s, r, orjson.loads(m or "{}"), k, st) for s, r, m, k, st in ledger],
                   {(s, k): v for s, k, v in state}, [(s, st) for s, st in quarantine])


def read_landed(home: Path, config: PipelineConfig, resource: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows of every page `resource` landed, read as the loader reads them
    (`reader_for`: prepare the pages together, then one page at a time)."""
    settings = settings_for(home)
    chosen = next(r for r in config.source.resources if r.name == resource)
    with open_warehouse(settings) as wh:
        keys = [k for (k,) in wh.query("select lake_path from ops.batches where source = ? and rows > 0 "
                                       "order by landed_at, batch_id", [config.ledger_source(chosen)])]
    lake = Lake(settings.lake)
    uris = [lake.uri(k) for k in keys]
    reader, con = reader_for(config, chosen), duckdb.connect()
    reader.prepare(con, uris)
    columns: list[str] = []
    rows: list[tuple[Any, ...]] = []
    for uri in uris:
        relation = con.sql(reader.select_sql(con, uri))
        columns = columns or list(relation.columns)
        rows += relation.fetchall()
    return columns, rows
