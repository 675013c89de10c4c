"""The REST source against real HTTP servers on loopback: each pagination style, the
per-resource incremental cursor, rate limits, status rules, retries, and the token kept
out of every log, lake file and error."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from lakebox.ingest.rest import (
    Auth,
    CursorInBody,
    Incremental,
    LinkHeader,
    ODataNextLink,
    Offset,
    PageNumber,
    Resource,
    RestSource,
)
from lakebox.lake import Lake
from lakebox.runner import Pipeline, RunOutcome, Stage, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.conftest import QuietHandler, serve_on_loopback

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
Respond = Callable[["Api", str, dict[str, str]], None]


class Api(QuietHandler):
    """A scripted API: `Api.respond(handler, path, query)` answers; every request is kept."""

    respond: Respond
    seen: ClassVar[list[tuple[str, dict[str, str], dict[str, str]]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        Api.seen.append((parts.path, query, dict(self.headers)))
        Api.respond(self, parts.path, query)

    def json(self, doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, orjson.dumps(doc), headers)


@pytest.fixture
def api() -> Iterator[str]:
    Api.seen = []
    with serve_on_loopback(Api) as url:
        yield url


class Outcome:
    def __init__(self, run: RunOutcome, ledger: list[tuple[Any, ...]], state: dict[str, str], home: Path) -> None:
        self.run, self.state, self.home = run, state, home
        self.ledger = [(rows, orjson.loads(meta)) for rows, meta in ledger]

    @property
    def rows(self) -> int:
        return sum(rows or 0 for rows, _ in self.ledger)


def fetch(home: Path, source: RestSource, **env: str) -> Outcome:
    """One run of a pipeline that only fetches, on a real DuckDB warehouse and lake."""
    settings = Settings.load(env={"LAKEBOX_HOME": str(home), "LAKEBOX_HTTP_BACKOFF": "0.01",
                                  "LAKEBOX_HTTP_MAX_DELAY": "60", **env}, cwd=home)
    with open_warehouse(settings) as wh:
        run = run_pipeline(Pipeline(source.source, (Stage("fetch", source.fetch),)), settings, Lake(settings.lake), wh)
        ledger = wh.query("select rows, meta from ops.batches where source = ? order by landed_at, batch_id",
                          [source.source])
        state = dict(wh.query("select state_key, value from ops.source_state where source = ?", [source.source]))
    return Outcome(run, ledger, state, home)


def records(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"r{i}"} for i in range(start, start + count)]


# ------------------------------------------------------------------ pagination styles
def test_cursor_in_body(tmp_path: Path, api: str) -> None:
    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        page = int(q.get("cursor", "0"))
        h.json({"records": records(page * 2, 2 if page < 2 else 1), "next_cursor": str(page + 1) if page < 2 else None})

    Api.respond = respond
    source = RestSource("cursors", api, "/v1/items", records="$.records",
                        pagination=CursorInBody("next_cursor", "cursor", size_param="limit", size=2),
                        params={"kind": "a"})
    out = fetch(tmp_path, source)
    assert out.run.status == "success", out.run.error
    assert [q for _, q, _ in Api.seen] == [{"kind": "a", "limit": "2"}, {"kind": "a", "limit": "2", "cursor": "1"},
                                          {"kind": "a", "limit": "2", "cursor": "2"}]
    assert [rows for rows, _ in out.ledger] == [2, 2, 1] and out.run.rows_in == 5
    assert sorted(m["request"].get("cursor", "") for _, m in out.ledger) == ["", "1", "2"]


def test_link_header_pages_carry_their_own_parameters(tmp_path: Path, api: str) -> None:
    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        page = int(q.get("page", "1"))
        links = f'<{api}/repos/o/r/commits?per_page=2&page={page + 1}>; rel="next", <{api}/x?page=3>; rel="last"'
        h.json(records(page * 10, 2 if page < 3 else 1), headers={"Link": links} if page < 3 else {})

    Api.respond = respond
    source = RestSource("links", api, "/repos/{owner}/{repo}/commits", pagination=LinkHeader(size=2),
                        resources=(Resource("o/r", {"owner": "o", "repo": "r"}),))
    out = fetch(tmp_path, source)
    assert out.run.status == "success", out.run.error
    assert [(p, q) for p, q, _ in Api.seen] == [("/repos/o/r/commits", {"per_page": "2"}),
                                               ("/repos/o/r/commits", {"per_page": "2", "page": "2"}),
                                               ("/repos/o/r/commits", {"per_page": "2", "page": "3"})]
    assert out.rows == 5
    assert all(m["resource"] == "o/r" for _, m in out.ledger)


def test_a_next_link_to_another_host_is_refused(tmp_path: Path, api: str) -> None:
    Api.respond = lambda h, path, q: h.json([{"id": 1}], headers={"Link": '<http://example.invalid/p2>; rel="next"'})
    out = fetch(tmp_path, RestSource("links", api, "/x", pagination=LinkHeader(), auth=Auth("LAKEBOX_T_TOKEN")),
                LAKEBOX_T_TOKEN="tok-abcdef")
    assert out.run.status == "failed"
    assert "another host" in (out.run.error or "") and len(Api.seen) == 1


def test_page_number_stops_on_a_short_page(tmp_path: Path, api: str) -> None:
    Api.respond = lambda h, path, q: h.json(records(int(q["page"]) * 3, 3 if q["page"] != "3" else 1))
    out = fetch(tmp_path, RestSource("numbers", api, "/items", pagination=PageNumber("page", "size", size=3)))
    assert out.run.status == "success", out.run.error
    assert [q["page"] for _, q, _ in Api.seen] == ["1", "2", "3"] and out.rows == 7


def test_offset_with_top_skip_and_count_stops_at_the_total(tmp_path: Path, api: str) -> None:
    total = 6

    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        skip, top = int(q["$skip"]), int(q["$top"])
        h.json({"@odata.context": "ctx", "@odata.count": total, "value": records(skip, max(0, min(top, total - skip)))})

    Api.respond = respond
    paging = Offset("$skip", "$top", size=3, count_field="@odata.count", extra={"$count": "true"})
    out = fetch(tmp_path, RestSource("who", api, "/api/{indicator}", records="$.value", pagination=paging,
                                     resources=(Resource("WHOSIS_000001", {"indicator": "WHOSIS_000001"}),)))
    assert out.run.status == "success", out.run.error
    assert [q for _, q, _ in Api.seen] == [{"$count": "true", "$skip": "0", "$top": "3"},
                                          {"$count": "true", "$skip": "3", "$top": "3"}]  # total reached: no 3rd ask
    assert out.rows == 6 and Api.seen[0][0] == "/api/WHOSIS_000001"


def test_offset_stops_when_the_server_ignores_the_page_size(tmp_path: Path, api: str) -> None:
    Api.respond = lambda h, path, q: h.json({"value": records(0, 10)})  # the real GHO sends a whole indicator
    out = fetch(tmp_path, RestSource("who", api, "/api/X", records="$.value", pagination=Offset("$skip", "$top", size=3)))
    assert out.run.status == "success", out.run.error
    assert len(Api.seen) == 1 and out.rows == 10


def test_a_recorded_gho_indicator_lands_as_received(tmp_path: Path, api: str) -> None:
    fixture = FIXTURES / "who_gho" / "datacommons_EMFLIMITELECTRIC.json"
    if not fixture.exists():
        pytest.skip(f"recorded responses not found at {fixture.parent}")
    body = fixture.read_bytes()
    Api.respond = lambda h, path, q: h.send_json(200, body)  # the real service ignores $top/$skip
    paging = ODataNextLink(fallback=Offset("$skip", "$top", size=1000, count_field="@odata.count",
                                           extra={"$count": "true"}))
    out = fetch(tmp_path, RestSource("who", api, "/api/{indicator}", records="$.value", pagination=paging,
                                     resources=(Resource("EMFLIMITELECTRIC", {"indicator": "EMFLIMITELECTRIC"}),)))
    assert out.run.status == "success", out.run.error
    assert len(Api.seen) == 1 and out.rows == len(orjson.loads(body)["value"]) > 0
    landed = [p for p in (tmp_path / "lake" / "raw" / "who").rglob("*.json") if not p.name.endswith(".manifest.json")]
    assert [p.read_bytes() for p in landed] == [body]


def test_odata_next_link(tmp_path: Path, api: str) -> None:
    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        if path == "/api/X":
            h.json({"value": records(0, 2), "@odata.nextLink": f"{api}/api/X/next?token=p2"})
        else:
            h.json({"value": records(2, 1)})

    Api.respond = respond
    paging = ODataNextLink(fallback=Offset("$skip", "$top", size=2))
    out = fetch(tmp_path, RestSource("who", api, "/api/X", records="$.value", pagination=paging))
    assert out.run.status == "success", out.run.error
    assert [(p, q) for p, q, _ in Api.seen] == [("/api/X", {"$skip": "0", "$top": "2"}), ("/api/X/next", {"token": "p2"})]
    assert out.rows == 3
    assert sorted(orjson.dumps(m["request"]) for _, m in out.ledger) == [b'{"$skip":0,"$top":2}', b'{"token":"p2"}']


# ------------------------------------------------------------------ incremental, per resource
class Commits:
    """Two repos' histories, newest first, filtered by an inclusive `since` like GitHub's."""

    repos: ClassVar[dict[str, list[dict[str, Any]]]] = {}
    fail_page: tuple[str, int] | None = None

    @staticmethod
    def commit(sha: str, when: str) -> dict[str, Any]:
        return {"sha": sha, "commit": {"committer": {"date": when}, "message": f"feat: {sha}"}}

    @staticmethod
    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        repo = path.split("/")[3]
        since = dt.datetime.fromisoformat(q["since"]) if "since" in q else None
        rows = [c for c in sorted(Commits.repos[repo], key=lambda c: c["commit"]["committer"]["date"], reverse=True)
                if since is None or dt.datetime.fromisoformat(c["commit"]["committer"]["date"]) >= since]
        page, size = int(q.get("page", "1")), int(q["per_page"])
        if Commits.fail_page == (repo, page):
            h.json({"message": "Server Error"}, status=404)
            return
        more = len(rows) > page * size
        link = {"Link": f'<{path}?per_page={size}&page={page + 1}{"&since=" + q["since"] if since else ""}>; rel="next"'}
        h.json(rows[(page - 1) * size: page * size], headers=link if more else {})


def github_like(api: str, *repos: str, sleep: Callable[[float], None] | None = None) -> RestSource:
    return RestSource(
        "commits", api, "/repos/{owner}/{repo}/commits", pagination=LinkHeader(size=2),
        resources=tuple(Resource(r, {"owner": r.split("/")[0], "repo": r.split("/")[1]}) for r in repos),
        incremental=Incremental("commit.committer.date", "since", overlap=dt.timedelta(seconds=1), newest_first=True),
        statuses={404: "repository {resource} not found; check LAKEBOX_GITHUB_REPOS"},
        sleep=sleep,
    )


def test_incremental_cursor_per_resource_is_persisted_and_resumed(tmp_path: Path, api: str) -> None:
    Api.respond = Commits.respond
    Commits.fail_page = None
    Commits.repos = {
        "a": [Commits.commit(f"a{i}", f"2026-01-0{i}T10:00:00Z") for i in range(1, 6)],
        "b": [Commits.commit("b1", "2026-02-01T09:00:00+00:00")],
    }
    first = fetch(tmp_path, github_like(api, "o/a", "o/b"))
    assert first.run.status == "success", first.run.error
    assert first.state == {"cursor:o/a": "2026-01-05T10:00:00Z", "cursor:o/b": "2026-02-01T09:00:00+00:00"}
    assert first.rows == 6
    assert all("since" not in q for _, q, _ in Api.seen)

    Api.seen = []
    Commits.repos["b"].append(Commits.commit("b2", "2026-02-02T09:00:00Z"))
    second = fetch(tmp_path, github_like(api, "o/a", "o/b"))
    assert second.run.status == "success", second.run.error
    asked = {p.split("/")[3]: q["since"] for p, q, _ in Api.seen}
    assert asked == {"a": "2026-01-05T09:59:59Z", "b": "2026-02-01T08:59:59Z"}  # each from its own cursor - overlap
    assert second.state == {"cursor:o/a": "2026-01-05T10:00:00Z", "cursor:o/b": "2026-02-02T09:00:00Z"}
    # the overlap re-sent a5 and b1, each in a page that carries the window it overlaps, for the loader (a
    # contract's version_key) or staging (the record's key) to drop what was already loaded
    new = {m["resource"]: m["overlap"] for _, m in second.ledger[len(first.ledger):]}
    assert new == {"o/a": ["2026-01-05T09:59:59Z", "2026-01-05T10:00:00Z"],
                   "o/b": ["2026-02-01T08:59:59Z", "2026-02-01T09:00:00+00:00"]}
    assert second.rows == first.rows + 3

    third = fetch(tmp_path, github_like(api, "o/a", "o/b"))  # nothing new
    assert third.state == second.state
    assert len(third.ledger) == len(second.ledger) + 1  # a's [a5] again: the same bytes, the same batch; b's [b2] is new


def test_a_newest_first_feed_moves_its_cursor_only_after_its_last_page(tmp_path: Path, api: str) -> None:
    Api.respond = Commits.respond
    Commits.repos = {"a": [Commits.commit(f"a{i}", f"2026-01-0{i}T10:00:00Z") for i in range(1, 6)]}
    Commits.fail_page = ("a", 2)
    failed = fetch(tmp_path, github_like(api, "o/a"))
    assert failed.run.status == "failed"
    assert failed.run.error == "repository o/a not found; check LAKEBOX_GITHUB_REPOS"
    assert failed.state == {}  # the newest page landed, but the older ones did not: the cursor stays
    assert failed.rows == 2  # the landed page is in the ledger, pending, and loads next run
    Commits.fail_page = None
    again = fetch(tmp_path, github_like(api, "o/a"))
    assert again.run.status == "success", again.run.error
    assert again.state == {"cursor:o/a": "2026-01-05T10:00:00Z"} and again.rows == 5


# ------------------------------------------------------------------ rate limits, statuses, retries
def scripted(*answers: tuple[int, dict[str, str], Any]) -> Respond:
    queue = list(answers)

    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        status, headers, doc = queue.pop(0) if queue else (200, {}, [{"id": 1}])
        h.json(doc, status, headers)

    return respond


def test_429_retry_after_is_honoured(tmp_path: Path, api: str) -> None:
    Api.respond = scripted((429, {"Retry-After": "7"}, {"message": "slow down"}))
    waits: list[float] = []
    out = fetch(tmp_path, RestSource("s", api, "/x", sleep=waits.append))
    assert out.run.status == "success", out.run.error
    assert waits == [7.0] and len(Api.seen) == 2 and out.rows == 1


def test_403_abuse_with_retry_after_is_retried(tmp_path: Path, api: str) -> None:
    Api.respond = scripted((403, {"Retry-After": "5"}, {"message": "secondary rate limit"}))
    waits: list[float] = []
    out = fetch(tmp_path, RestSource("s", api, "/x", sleep=waits.append))
    assert out.run.status == "success", out.run.error
    assert waits == [5.0]


def test_403_rate_limit_waits_for_the_reset_within_the_bound(tmp_path: Path, api: str) -> None:
    reset = int(time.time()) + 120  # longer than the backoff cap (60 s): a reset wait is not a backoff
    Api.respond = scripted((403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
                            {"message": "API rate limit exceeded"}))
    waits: list[float] = []
    out = fetch(tmp_path, RestSource("s", api, "/x", sleep=waits.append), LAKEBOX_HTTP_MAX_RATE_LIMIT_WAIT="300")
    assert out.run.status == "success", out.run.error
    assert len(waits) == 1 and 115 < waits[0] <= 122 and out.rows == 1


def test_rate_limit_beyond_the_bound_fails_saying_when_to_retry(tmp_path: Path, api: str) -> None:
    reset = int(time.time()) + 3600
    Api.respond = scripted((429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, {}))
    waits: list[float] = []
    out = fetch(tmp_path, RestSource("gh", api, "/x", sleep=waits.append), LAKEBOX_HTTP_MAX_RATE_LIMIT_WAIT="60")
    when = dt.datetime.fromtimestamp(reset, dt.UTC).isoformat().replace("+00:00", "Z")
    assert out.run.status == "failed" and waits == [] and len(Api.seen) == 1
    assert f"try again after {when}" in (out.run.error or "") and "source gh" in (out.run.error or "")
    assert out.ledger == [] and out.state == {}


@pytest.mark.parametrize("status, message", [
    (401, "the token in LAKEBOX_GH_TOKEN was refused (HTTP 401); set a valid token"),
    (404, "repository o/a not found (HTTP 404); check LAKEBOX_GITHUB_REPOS"),
])
def test_status_messages_come_from_the_config(tmp_path: Path, api: str, status: int, message: str) -> None:
    Api.respond = scripted((status, {}, {"message": "Bad credentials" if status == 401 else "Not Found"}))
    source = RestSource("gh", api, "/repos/{owner}/{repo}/commits", resources=(Resource("o/a", {"owner": "o", "repo": "a"}),),
                        statuses={401: "the token in LAKEBOX_GH_TOKEN was refused (HTTP {status}); set a valid token",
                                  404: "repository {resource} not found (HTTP {status}); check LAKEBOX_GITHUB_REPOS"})
    out = fetch(tmp_path, source)
    assert out.run.status == "failed" and out.run.error == message
    assert len(Api.seen) == 1 and out.ledger == []


def test_409_means_empty(tmp_path: Path, api: str) -> None:
    Api.respond = scripted((409, {}, {"message": "Git Repository is empty.", "status": "409"}))
    source = RestSource("gh", api, "/repos/o/empty/commits", resources=(Resource("o/empty"),),
                        incremental=Incremental("commit.committer.date", "since"), empty_statuses=frozenset({409}))
    out = fetch(tmp_path, source)
    assert out.run.status == "success", out.run.error
    assert out.ledger == [] and out.state == {} and out.run.rows_in == 0
    assert not list((tmp_path / "lake").rglob("*.json"))  # an empty answer is not a page


def test_5xx_is_retried_then_recovers(tmp_path: Path, api: str) -> None:
    Api.respond = scripted((500, {}, {}), (502, {}, {}), (503, {}, {}))
    waits: list[float] = []
    out = fetch(tmp_path, RestSource("s", api, "/x", sleep=waits.append))
    assert out.run.status == "success", out.run.error
    assert waits == [0.01, 0.02, 0.04] and out.rows == 1


def test_an_unreadable_response_that_a_retry_cures_is_a_retry_not_a_quarantine(tmp_path: Path, api: str) -> None:
    Api.respond = scripted((200, {}, {"records": "not a list"}), (200, {}, {"records": [{"id": 1}]}))
    waits: list[float] = []
    out = fetch(tmp_path, RestSource("s", api, "/x", records="$.records", sleep=waits.append))
    assert out.run.status == "success", out.run.error
    assert len(Api.seen) == 2 and waits == [0.01]  # asked again after a backoff, like any transient fault
    assert not (tmp_path / "lake" / "quarantine").exists()
    assert [rows for rows, _ in out.ledger] == [1]  # only the readable page landed
    with open_warehouse(Settings.load(env={"LAKEBOX_HOME": str(tmp_path)}, cwd=tmp_path)) as wh:
        assert wh.query("select count(*) from ops.quarantine") == [(0,)]


def test_responses_unreadable_through_every_retry_are_quarantined_and_fail_the_run(tmp_path: Path, api: str) -> None:
    Api.respond = lambda h, path, q: h.send_json(200, f'{{"records": [{len(Api.seen)}'.encode())  # cut short
    out = fetch(tmp_path, RestSource("s", api, "/x", records="$.records", sleep=lambda s: None),
                LAKEBOX_HTTP_MAX_ATTEMPTS="3")
    assert out.run.status == "failed" and len(Api.seen) == 3
    error = out.run.error or ""
    assert "source s" in error and "stopped by LAKEBOX_HTTP_MAX_ATTEMPTS=3 attempts" in error, error
    assert "3 unreadable responses are quarantined" in error
    kept = sorted(p.read_bytes() for p in (tmp_path / "lake" / "quarantine" / "s").rglob("*.json")
                  if not p.name.endswith(".errors.json"))
    assert kept == [b'{"records": [1', b'{"records": [2', b'{"records": [3']  # nothing lost
    assert [rows for rows, _ in out.ledger] == [None, None, None]  # in the ledger, as quarantined
    why = [orjson.loads(p.read_bytes()) for p in (tmp_path / "lake" / "quarantine" / "s").rglob("*.errors.json")]
    assert all("is not a valid s page" in w["rules"][0]["detail"] and "LAKEBOX_HTTP_MAX_ATTEMPTS stopped" in
               w["rules"][0]["detail"] for w in why) and len(why) == 3, why
    with open_warehouse(Settings.load(env={"LAKEBOX_HOME": str(tmp_path)}, cwd=tmp_path)) as wh:
        assert wh.query("select count(*) from ops.quarantine where status = 'open'") == [(3,)]


# ------------------------------------------------------------------ sources that never stop paging
def endless(style: str, api: str) -> tuple[Respond, RestSource]:
    """An API that always has a next page, repeating it (`same`) or inventing a new one."""
    kind, _, repeat = style.partition(":")

    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        n = len(Api.seen)
        following = "1" if repeat == "same" else str(n)
        if kind == "cursor":
            h.json({"records": records(n * 2, 2), "next_cursor": following})
        elif kind == "link":
            h.json(records(n * 2, 2), headers={"Link": f'<{api}/x?page={following}>; rel="next"'})
        elif kind == "odata":
            h.json({"value": records(n * 2, 2), "@odata.nextLink": f"{api}/x?token={following}"})
        else:  # page numbers or offsets, on a server that ignores them and always sends a full page
            h.json(records(n * 2, 2))

    pagination: Any = {"cursor": CursorInBody(), "link": LinkHeader(), "odata": ODataNextLink(),
                       "pagenumber": PageNumber(size=2), "offset": Offset(size=2)}[kind]
    return respond, RestSource("loop", api, "/x", records="$.value" if kind == "odata" else
                               "$.records" if kind == "cursor" else "$", pagination=pagination,
                               resources=(Resource("r1"),))


@pytest.mark.parametrize("style", ["cursor:same", "link:same", "odata:same"])
def test_a_repeated_cursor_or_link_fails_the_run_at_once(tmp_path: Path, api: str, style: str) -> None:
    Api.respond, source = endless(style, api)
    out = fetch(tmp_path, source)
    assert out.run.status == "failed"
    error = out.run.error or ""
    assert "source loop (r1)" in error and "already sent" in error and "stopped after 2 pages" in error, error
    assert len(Api.seen) == 2  # the first page, the one it pointed to, and no third ask for the same
    assert [rows for rows, _ in out.ledger] == [2, 2]  # what landed stays, pending, for the next run's load


@pytest.mark.parametrize("style", ["cursor:new", "link:new", "odata:new", "pagenumber", "offset"])
def test_a_source_that_always_has_a_new_next_page_stops_at_the_page_bound(tmp_path: Path, api: str,
                                                                           style: str) -> None:
    Api.respond, source = endless(style, api)
    out = fetch(tmp_path, source, LAKEBOX_HTTP_MAX_PAGES="5")
    assert out.run.status == "failed"
    error = out.run.error or ""
    assert "source loop (r1)" in error and "bound of 5 pages per run (LAKEBOX_HTTP_MAX_PAGES)" in error, error
    assert "10 records" in error and "raise LAKEBOX_HTTP_MAX_PAGES" in error
    assert len(Api.seen) == 5 and out.rows == 10 and len(out.ledger) == 5


def test_the_record_bound_is_per_run_over_every_resource(tmp_path: Path, api: str) -> None:
    Api.respond, source = endless("cursor:new", api)
    out = fetch(tmp_path, replace(source, resources=(Resource("r1"), Resource("r2"))), LAKEBOX_HTTP_MAX_RECORDS="7")
    assert out.run.status == "failed"
    assert "bound of 7 records per run (LAKEBOX_HTTP_MAX_RECORDS)" in (out.run.error or ""), out.run.error
    assert len(Api.seen) == 4 and out.rows == 8  # the page that crossed the bound is kept


def test_a_source_with_exactly_the_bound_of_pages_succeeds(tmp_path: Path, api: str) -> None:
    Api.respond = lambda h, path, q: h.json(records(int(q["page"]) * 2, 2 if q["page"] != "3" else 1))
    out = fetch(tmp_path, RestSource("numbers", api, "/items", pagination=PageNumber(size=2)),
                LAKEBOX_HTTP_MAX_PAGES="3")
    assert out.run.status == "success", out.run.error
    assert out.rows == 5


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), getattr(record, "fields", {})))


def test_progress_is_logged_while_paging(tmp_path: Path, api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakebox.ingest import rest

    monkeypatch.setattr(rest, "PROGRESS_EVERY_PAGES", 2)
    collect = Collect()
    logger = logging.getLogger("lakebox")
    level = logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        Api.respond, source = endless("cursor:new", api)
        out = fetch(tmp_path, source, LAKEBOX_HTTP_MAX_PAGES="5")
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    assert out.run.status == "failed"
    progress = [(f["pages"], f["records"], f["resource"]) for msg, f in collect.lines if msg == "fetching loop: progress"]
    assert progress == [(2, 4, "r1"), (4, 8, "r1")]


# ------------------------------------------------------------------ the token
def _unconfigure_logging() -> None:
    logger = logging.getLogger("lakebox")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_the_token_is_sent_and_never_logged_written_or_shown(
    tmp_path: Path, api: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    from lakebox.log import configure_logging

    token = "tok-9f8e7d6c5b4a"
    monkeypatch.setenv("LAKEBOX_TEST_API_AUTH", token)  # a name `redact` does not know as secret

    failed_once: list[bool] = []

    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        echoed = h.headers.get("Authorization", "")
        if path == "/bad":
            h.json({"message": f"refusing {echoed}"}, status=400)  # a body that echoes the credentials
        elif not failed_once:
            failed_once.append(True)
            h.json({"message": f"down for {echoed}"}, status=503)  # retried, and logged as such
        else:
            h.json({"records": [{"id": 2}], "next": None})

    Api.respond = respond
    home = tmp_path / "home"
    configure_logging(home / "logs", "DEBUG")
    request.addfinalizer(_unconfigure_logging)
    auth = Auth("LAKEBOX_TEST_API_AUTH", "Authorization", "Bearer {token}")
    good = RestSource("s", api, "/x", records="$.records", auth=auth, pagination=PageNumber("page", "n", size=5),
                      sleep=lambda s: None)
    out = fetch(home, good, LAKEBOX_TEST_API_AUTH=token)
    bad = fetch(home, RestSource("s", api, "/bad", auth=auth), LAKEBOX_TEST_API_AUTH=token)
    assert all(headers.get("Authorization") == f"Bearer {token}" for _, _, headers in Api.seen)
    assert bad.run.status == "failed" and "HTTP 400" in (bad.run.error or "") and "refusing Bearer ***" in (bad.run.error or "")
    captured = capfd.readouterr()
    assert token not in captured.out + captured.err + (out.run.error or "") + (bad.run.error or "")
    leaks = [p for p in home.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaks == []
    assert list((home / "lake").rglob("*.manifest.json")) and list((home / "logs").glob("*.jsonl"))


def test_the_base_url_comes_from_the_environment(tmp_path: Path, api: str) -> None:
    from lakebox.ingest.rest import base_url_from_env

    Api.respond = scripted()
    source = RestSource("s", base_url_from_env("LAKEBOX_T_API_URL"), "/x")
    assert fetch(tmp_path, source, LAKEBOX_T_API_URL=api).run.rows_in == 1
    unset = fetch(tmp_path, source)
    assert unset.run.status == "failed" and unset.run.error == "LAKEBOX_T_API_URL is not set; set it to the API's base URL"
