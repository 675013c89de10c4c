"""The github_commits connector against GitHub's own recorded responses, replayed by a
loopback server: Link paging in the 2012/2013 `last_sha` style and the modern `page=N`
style, `since`, the rate limit with its reset, abuse detection's Retry-After, 404, 409,
401, and an incremental second run.

The replay answers each recorded request (path and query) with the recorded status,
headers and body, `Link` URLs pointed at itself. Query parameters that are the recording
client's choices and not the connector's (`LOOSE`: its page size, a branch, an `until`)
are not compared; everything else, `since` included, must match. A recording stops
somewhere: a request it does not hold is answered as GitHub answers a page past the end
(`200 []`), and every request is logged with whether a recording answered it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from lakebox.errors import SourceFailedError
from lakebox.pipelines.github_commits.fetch import fetch, rest_source
from lakebox.pipelines.github_commits.source import parse_repos
from lakebox.runner import RunContext, StageResult
from lakebox.warehouse import ops
from tests.conftest import QuietHandler, run_cli, serve_on_loopback
from tests.pipelines.github_commits.conftest import (
    Exchange,
    build,
    github_home,
    is_list_page,
    load,
    recorded_exchanges,
    rows,
)

OLD_STYLE = "pygithub_list_commits_3pages_2012.txt"  # ?last_sha=...&top=master cursors, 3 pages of 30
SINCE_UNTIL = "pygithub_list_commits_since_until_2pages_lastpage_2013.txt"  # since/until, 2 pages, the last without next
MODERN = ("pygithub_list_commits_modern_link_next_last_2026.txt", "github3py_betamax_list_commits_link_next_last_2018.json")
REPO = "PyGithub/PyGithub"
LOOSE = frozenset({"per_page", "sha", "until"})
SKIPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding", "status"})
TOKEN = "ghp_replay-token-0123456789abcdef"
EMPTY_REPOSITORY = Exchange("GitHub's documentation", "/repos/octo/empty/commits", 409, (), orjson.dumps(
    {"message": "Git Repository is empty.",
     "documentation_url": "https://docs.github.com/rest/commits/commits#list-commits", "status": "409"}))
BAD_CREDENTIALS = Exchange("GitHub's documentation", f"/repos/{REPO}/commits", 401, (), orjson.dumps(
    {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}))


@dataclass
class Replay:
    """Recorded exchanges served by request. `before` holds one-off responses a path gets
    first (a rate limit on the first page); `since_filter` answers a `since` no recording
    asked with the path's first recorded page narrowed to commits committed since then, as
    GitHub narrows it."""

    exchanges: list[Exchange]
    loose: frozenset[str] = LOOSE
    before: dict[str, list[Exchange]] = field(default_factory=dict)
    since_filter: bool = False
    base: str = ""
    seen: list[tuple[str, bool]] = field(default_factory=list)
    served: list[bytes] = field(default_factory=list)

    def key(self, target: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        url = urlsplit(target)
        ignored = self.loose | ({"since"} if self.since_filter else set())
        return url.path, tuple(sorted((k, v) for k, v in parse_qsl(url.query) if k not in ignored))

    def answer(self, target: str) -> tuple[int, list[tuple[str, str]], bytes]:
        path = urlsplit(target).path
        if self.before.get(path):
            exchange = self.before[path].pop(0)
        else:
            recorded = {}
            for e in self.exchanges:
                recorded.setdefault(self.key(e.request), e)
            exchange = recorded.get(self.key(target))
            since = dict(parse_qsl(urlsplit(target).query)).get("since")
            if exchange and self.since_filter and since:
                exchange = _narrowed(exchange, since)
        self.seen.append((target, exchange is not None))
        if exchange is None:
            return 200, [("Content-Type", "application/json; charset=utf-8")], b"[]"
        headers = [(k, v.replace("https://api.github.com", self.base) if k.lower() == "link" else v)
                   for k, v in exchange.headers if k.lower() not in SKIPPED_HEADERS]
        self.served.append(exchange.body)
        return exchange.status, headers, exchange.body


def _narrowed(exchange: Exchange, since: str) -> Exchange:
    moment = dt.datetime.fromisoformat(since)
    commits = [c for c in orjson.loads(exchange.body)
               if dt.datetime.fromisoformat(c["commit"]["committer"]["date"]) >= moment]
    return replace(exchange, headers=tuple((k, v) for k, v in exchange.headers if k.lower() != "link"),
                   body=orjson.dumps(commits))


Serve = Callable[[Replay], str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(replay) -> the replay's base URL on loopback, for the rest of the test."""
    with ExitStack() as stack:
        def start(replay: Replay) -> str:
            class Handler(QuietHandler):
                def do_GET(self) -> None:
                    status, headers, body = replay.answer(self.path)
                    self.send_response(status)
                    for name, value in headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            replay.base = stack.enter_context(serve_on_loopback(Handler))
            return replay.base

        yield start


def home(base: str, repos: str = REPO, **env: str) -> AbstractContextManager[RunContext]:
    return github_home({"LAKEBOX_GITHUB_API_URL": base, "LAKEBOX_GITHUB_REPOS": repos, **env})


def fetch_waiting(ctx: RunContext, waits: list[float]) -> StageResult:
    """The fetch stage's source as configured from the environment, its sleep recorded
    instead of slept."""
    values = ctx.settings.pipeline("github_commits")
    source = rest_source(values, values["api_url"], parse_repos(values["repos"]))
    return replace(source, sleep=waits.append).fetch(ctx)


def landed_bodies(ctx: RunContext) -> list[bytes]:
    keys = rows(ctx.warehouse, "select lake_path from ops.batches where source = 'github_commits' order by landed_at")
    return [ctx.lake.read_bytes(k) for (k,) in keys]


def cursor(ctx: RunContext, repo: str = REPO) -> str | None:
    return ops.get_state(ctx.warehouse, "github_commits", f"committed_at:{repo}")


def test_old_style_last_sha_pages_land_as_received_and_load_every_commit_once(lakebox_env: dict[str, str],
                                                                               serve: Serve) -> None:
    recorded = [e for e in recorded_exchanges(OLD_STYLE) if is_list_page(e)]
    replay = Replay(recorded)
    with home(serve(replay)) as ctx:
        fetched = fetch(ctx)
        load(ctx)
        assert sorted(landed_bodies(ctx)) == sorted(e.body for e in recorded)  # every page, byte for byte
        loaded = rows(ctx.warehouse, "select count(*), count(distinct sha), min(repo), max(repo) from raw.github_commits")
        assert cursor(ctx) == "2012-05-25T10:14:34-07:00"  # the newest committer date, as GitHub wrote it
    assert fetched.rows_out == 90 and loaded[0] == (90, 90, REPO, REPO)
    # the connector asked its own page size, then followed each Link verbatim (to the replay)
    assert [(urlsplit(t).path, dict(parse_qsl(urlsplit(t).query))) for t, _ in replay.seen] == [
        (f"/repos/{REPO}/commits", {"per_page": "100"}),
        (f"/repos/{REPO}/commits", {"last_sha": "c1440bdf20bfeb62684c6d1779448719dce9d2df", "top": "master"}),
        (f"/repos/{REPO}/commits", {"last_sha": "3e8169c0a98ce1e2c6a32ae1256ae0f735065df5", "top": "master"}),
        (f"/repos/{REPO}/commits", {"last_sha": "6b89c02872cbcb179d79cb4ceb2436fee02425d0", "top": "master"}),
    ]
    assert [answered for _, answered in replay.seen] == [True, True, True, False]  # the recording stops at 3 pages


@pytest.mark.parametrize("recording", MODERN)
def test_modern_page_links_are_followed_to_the_repository_id_url(lakebox_env: dict[str, str], serve: Serve,
                                                                 recording: str) -> None:
    recorded = [e for e in recorded_exchanges(recording) if is_list_page(e)]
    repo = "/".join(urlsplit(recorded[0].request).path.split("/")[2:4])
    replay = Replay(recorded)
    with home(serve(replay), repos=repo) as ctx:
        fetch(ctx)
        load(ctx)
        assert set(landed_bodies(ctx)) == {e.body for e in recorded}
        loaded = rows(ctx.warehouse, "select count(*), count(distinct sha) from raw.github_commits")[0]
    assert loaded == (len(orjson.loads(recorded[0].body)),) * 2
    follow, answered = replay.seen[1]
    # rel="next" names /repositories/{id}/commits?...&page=2: followed as given, not rebuilt
    assert urlsplit(follow).path.startswith("/repositories/") and dict(parse_qsl(urlsplit(follow).query))["page"] == "2"
    assert not answered and len(replay.seen) == 2


def test_since_is_sent_on_the_first_request_and_the_last_page_ends_the_paging(lakebox_env: dict[str, str],
                                                                             serve: Serve) -> None:
    recorded = [e for e in recorded_exchanges(SINCE_UNTIL) if is_list_page(e)]
    replay = Replay(recorded)
    with home(serve(replay), LAKEBOX_GITHUB_SINCE="2013-03-01T00:00:00Z") as ctx:
        fetched = fetch(ctx)
        load(ctx)
        assert sorted(landed_bodies(ctx)) == sorted(e.body for e in recorded)
        assert rows(ctx.warehouse, "select count(distinct sha), count(*) from raw.github_commits")[0] == (47, 47)
        assert cursor(ctx) == "2013-03-29T15:54:15Z"
    assert fetched.rows_out == 47
    assert [answered for _, answered in replay.seen] == [True, True]  # page 2 has no rel="next": done
    assert dict(parse_qsl(urlsplit(replay.seen[0][0]).query))["since"] == "2013-03-01T00:00:00Z"


def rate_limited(reset_in: float) -> Exchange:
    """The recorded 403 "API Rate Limit Exceeded" (remaining 0) with its reset `reset_in` s from now."""
    exchange = next(e for e in recorded_exchanges("pygithub_403_rate_limit_exceeded_2013.txt") if e.status == 403)
    return replace(exchange, headers=(*exchange.headers, ("X-RateLimit-Reset", str(int(time.time() + reset_in)))))


def test_a_spent_rate_limit_waits_for_its_reset_then_resumes(lakebox_env: dict[str, str], serve: Serve) -> None:
    recorded = [e for e in recorded_exchanges(OLD_STYLE) if is_list_page(e)]
    replay = Replay(recorded, before={f"/repos/{REPO}/commits": [rate_limited(2)]})
    waits: list[float] = []
    with home(serve(replay)) as ctx:
        fetched = fetch_waiting(ctx, waits)
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3.5  # until the reset (+1 s against clock skew), not a backoff
    assert fetched.rows_out == 90 and replay.seen[0][0] == replay.seen[1][0]  # the same request, asked again


def test_a_reset_beyond_the_bound_fails_saying_when_to_retry(lakebox_env: dict[str, str], serve: Serve) -> None:
    limited = rate_limited(600)
    reset = int(dict((k.lower(), v) for k, v in limited.headers)["x-ratelimit-reset"])
    replay = Replay([], before={f"/repos/{REPO}/commits": [limited]})
    waits: list[float] = []
    with home(serve(replay), LAKEBOX_HTTP_MAX_RATE_LIMIT_WAIT="60") as ctx:
        with pytest.raises(SourceFailedError) as failure:
            fetch_waiting(ctx, waits)
        assert rows(ctx.warehouse, "select count(*) from ops.batches")[0][0] == 0 and cursor(ctx) is None
    when = dt.datetime.fromtimestamp(reset, dt.UTC).isoformat().replace("+00:00", "Z")
    message = str(failure.value)
    assert f"try again after {when}" in message and "LAKEBOX_HTTP_MAX_RATE_LIMIT_WAIT" in message
    assert waits == [] and len(replay.seen) == 1


def test_abuse_detection_is_retried_after_its_retry_after(lakebox_env: dict[str, str], serve: Serve) -> None:
    abuse = next(e for e in recorded_exchanges("pygithub_403_abuse_retry_after_2018.txt") if e.status == 403)
    recorded = [e for e in recorded_exchanges(OLD_STYLE) if is_list_page(e)]
    replay = Replay(recorded, before={f"/repos/{REPO}/commits": [abuse]})
    waits: list[float] = []
    with home(serve(replay)) as ctx:  # LAKEBOX_HTTP_MAX_DELAY is 0.2 s here: the server's 60 s still rules
        fetched = fetch_waiting(ctx, waits)
    assert waits == [60.0] and fetched.rows_out == 90


def test_an_unknown_repository_is_named(lakebox_env: dict[str, str], serve: Serve) -> None:
    not_found = next(e for e in recorded_exchanges("pygithub_404_repo_not_found_2012.txt") if e.status == 404)
    replay = Replay([replace(not_found, request="/repos/jacquev6/Xxx/commits")])
    with home(serve(replay), repos="jacquev6/Xxx") as ctx:
        with pytest.raises(SourceFailedError, match="repository jacquev6/Xxx not found or token lacks access; "
                                                    "check LAKEBOX_GITHUB_REPOS"):
            fetch(ctx)
        assert rows(ctx.warehouse, "select count(*) from ops.batches")[0][0] == 0
    assert replay.seen == [("/repos/jacquev6/Xxx/commits?per_page=100", True)]


def test_bad_credentials_name_the_token_and_never_show_it(lakebox_env: dict[str, str], serve: Serve,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    replay = Replay([BAD_CREDENTIALS])
    with home(serve(replay), LAKEBOX_GITHUB_TOKEN=TOKEN) as ctx:
        with pytest.raises(SourceFailedError, match="token rejected: check LAKEBOX_GITHUB_TOKEN") as failure:
            fetch(ctx)
        written = [p for p in ctx.settings.home.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert TOKEN not in str(failure.value) and TOKEN not in "".join(capfd.readouterr())
    assert written == []


@pytest.mark.slow
def test_an_empty_repository_is_no_commits_and_the_run_succeeds(lakebox_env: dict[str, str], serve: Serve,
                                                                 tmp_path: Path) -> None:
    recorded = [e for e in recorded_exchanges(OLD_STYLE) if is_list_page(e)]
    replay = Replay([*recorded, EMPTY_REPOSITORY])
    env = {**lakebox_env, "LAKEBOX_GITHUB_API_URL": serve(replay), "LAKEBOX_GITHUB_REPOS": f"{REPO},octo/empty",
           "LAKEBOX_GITHUB_TOKEN": TOKEN}
    done = run_cli("run", "github_commits", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [orjson.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(e["msg"] == "github_commits: nothing to fetch" and e.get("resource") == "octo/empty"
               and e.get("status") == 409 for e in events)
    assert ("/repos/octo/empty/commits?per_page=100", True) in replay.seen
    home_dir = Path(env["LAKEBOX_HOME"])
    assert TOKEN not in done.stderr + done.stdout
    assert not [p for p in home_dir.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    with github_home() as ctx:
        assert rows(ctx.warehouse, "select count(*) from staging.stg_commits")[0][0] == 90
        assert cursor(ctx, "octo/empty") is None


@pytest.mark.slow
def test_a_second_run_asks_since_the_cursor_less_the_overlap_and_staging_keeps_one_row(
        lakebox_env: dict[str, str], serve: Serve) -> None:
    recorded = [e for e in recorded_exchanges(OLD_STYLE) if is_list_page(e)]
    first = Replay(recorded)
    with home(serve(first)) as ctx:
        fetch(ctx)
        assert cursor(ctx) == "2012-05-25T10:14:34-07:00"
    again = Replay(recorded, since_filter=True)
    with home(serve(again)) as ctx:
        fetched = fetch(ctx)
        load(ctx)
        build(ctx, "stg_commits")
        raw = rows(ctx.warehouse, "select count(*), count(distinct sha) from raw.github_commits")[0]
        staged = rows(ctx.warehouse, "select count(*), count(distinct sha) from staging.stg_commits")[0]
        assert cursor(ctx) == "2012-05-25T10:14:34-07:00"
    asked = dict(parse_qsl(urlsplit(again.seen[0][0]).query))
    assert asked["since"] == "2012-05-22T17:14:34Z"  # the cursor (10:14:34-07:00) less 72 h, in UTC
    assert fetched.rows_out == 4 and len(again.seen) == 1  # the commits of the overlap, on one page
    assert raw == (94, 90) and staged == (90, 90)
