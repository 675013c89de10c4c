"""The REST source when one request or one resource goes wrong: a quarantined page is asked
for again by the next run (its cursor has moved on) and resolves once it reads; a resource
that fails (404, a page that stays unreadable) does not stop the resources after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from lakebox.ingest.batches import load_pending_batches
from lakebox.ingest.json_pages import PageReader
from lakebox.ingest.rest import CursorInBody, Incremental, RestSource
from lakebox.lake import Lake
from lakebox.quality import Column, Contract
from lakebox.runner import Pipeline, RunOutcome, Stage, run_pipeline
from lakebox.settings import Settings
from lakebox.stage import RunContext, StageResult
from lakebox.warehouse import open_warehouse
from tests.conftest import serve_on_loopback
from tests.ingest.test_rest import Api, Commits, fetch, github_like

FEED = Contract(source="feed", table="raw.feed", description="a test feed", columns=(
    Column("id", "string", nullable=False), Column("updated_at", "timestamp", nullable=False)))


@pytest.fixture
def api() -> Iterator[str]:
    Api.seen = []
    with serve_on_loopback(Api) as url:
        yield url


class Feed:
    """Six records oldest first, two a page from a cursor `c<index>` (or from the first record
    at or after `updated_since`); page `c4` is cut short while `broken`."""

    broken: ClassVar[bool] = True
    rows: ClassVar[list[dict[str, str]]] = [{"id": f"r{i}", "updated_at": f"2026-01-0{i + 1}T00:00:00Z"}
                                            for i in range(6)]

    @staticmethod
    def respond(h: Api, path: str, q: dict[str, str]) -> None:
        since = q.get("updated_since", "")
        start = int(q["cursor"][1:]) if "cursor" in q else next(i for i, r in enumerate(Feed.rows)
                                                                if r["updated_at"] >= since)
        if start == 4 and Feed.broken:
            h.send_json(200, b'{"records": [{"id": "r4"')
            return
        h.json({"records": Feed.rows[start:start + 2], "next_cursor": f"c{start + 2}" if start + 2 < 6 else None})


def feed_source(api: str) -> RestSource:
    return RestSource("feed", api, "/v1/feed", records="$.records",
                      pagination=CursorInBody("next_cursor", "cursor", resend_params=False),
                      incremental=Incremental("updated_at", "updated_since", state_key="watermark"),
                      sleep=lambda s: None)


def run_feed(home: Path, source: RestSource) -> RunOutcome:
    """fetch, then load through the gate: the path a quarantined item resolves on (under a
    bundled pipeline's name, for its gate policy)."""

    def load(ctx: RunContext) -> StageResult:
        return load_pending_batches(ctx, FEED, PageReader("$.records"), hint="fix the feed")

    settings = Settings.load(env={"LAKEBOX_HOME": str(home), "LAKEBOX_HTTP_BACKOFF": "0.01",
                                  "LAKEBOX_HTTP_MAX_ATTEMPTS": "2"}, cwd=home)
    with open_warehouse(settings) as wh:
        return run_pipeline(Pipeline("orders", (Stage("fetch", source.fetch), Stage("load", load))), settings,
                            Lake(settings.lake), wh)


def query(home: Path, sql: str) -> list[tuple[Any, ...]]:
    with open_warehouse(Settings.load(env={"LAKEBOX_HOME": str(home)}, cwd=home)) as wh:
        return wh.query(sql)


def test_a_quarantined_page_is_asked_again_and_resolves_once_it_reads(tmp_path: Path, api: str) -> None:
    Api.respond, Feed.broken = Feed.respond, True
    first = run_feed(tmp_path, feed_source(api))
    assert first.status == "failed" and "unreadable responses are quarantined" in (first.error or "")
    assert query(tmp_path, "select value from ops.source_state") == [("2026-01-04T00:00:00Z",)]  # moved past c2
    [why] = [orjson.loads(p.read_bytes()) for p in (tmp_path / "lake" / "quarantine").rglob("*.errors.json")]
    assert why["rules"][0]["sample"] == [{"url": f"{api}/v1/feed", "params": {"cursor": "c4"}}]  # what to ask again

    Api.seen = []
    second = run_feed(tmp_path, feed_source(api))  # still broken: the item stays open, the run goes on
    assert second.status == "partial", second.error
    assert [q for _, q, _ in Api.seen] == [{"cursor": "c4"}] * 2 + [  # asked again (2 attempts), then paged on
        {"updated_since": "2026-01-03T23:59:59Z"}, {"cursor": "c5"}]

    Feed.broken, Api.seen = False, []
    third = run_feed(tmp_path, feed_source(api))
    assert third.status == "success", third.error
    assert Api.seen[0][1] == {"cursor": "c4"}
    [(status, reason, by)] = query(tmp_path, "select status, reason, superseded_by_batch from ops.quarantine")
    assert status == "resolved" and reason == "a corrected version loaded" and by
    assert query(tmp_path, "select count(distinct id) from raw.feed where id in ('r4', 'r5')") == [(2,)]


def test_a_missing_repository_does_not_stop_the_ones_after_it(tmp_path: Path, api: str) -> None:
    Api.respond, Commits.fail_page = Commits.respond, None
    Commits.repos = {"a": [Commits.commit("a1", "2026-01-01T10:00:00Z")],
                     "c": [Commits.commit("c1", "2026-01-03T10:00:00Z")]}  # no "b": a 404 for o/b
    Api.respond = lambda h, path, q: (h.json({"message": "Not Found"}, status=404) if path.split("/")[3] == "b"
                                      else Commits.respond(h, path, q))
    out = fetch(tmp_path, github_like(api, "o/a", "o/b", "o/c"))
    assert out.run.status == "failed"
    assert "1 of 3 resources failed (o/b: repository o/b not found" in (out.run.error or ""), out.run.error
    assert "the other 2 were fetched" in (out.run.error or "")
    assert sorted(m["resource"] for _, m in out.ledger) == ["o/a", "o/c"]  # o/c, after the missing one, fetched
    assert out.state == {"cursor:o/a": "2026-01-01T10:00:00Z", "cursor:o/c": "2026-01-03T10:00:00Z"}


def test_an_unreadable_page_of_one_repository_is_quarantined_and_the_others_load(tmp_path: Path, api: str) -> None:
    Commits.fail_page = None
    Commits.repos = {"a": [Commits.commit("a1", "2026-01-01T10:00:00Z")],
                     "c": [Commits.commit("c1", "2026-01-03T10:00:00Z")]}
    Api.respond = lambda h, path, q: (h.send_json(200, b'[{"sha": "b1", "commit": {"message": "\\ud800"}}]')
                                      if path.split("/")[3] == "b" else Commits.respond(h, path, q))
    out = fetch(tmp_path, github_like(api, "o/a", "o/b", "o/c", sleep=lambda s: None), LAKEBOX_HTTP_MAX_ATTEMPTS="2")
    assert out.run.status == "partial", out.run.error  # the quarantined page is open; nothing else failed
    assert sorted(m["resource"] for rows, m in out.ledger if rows) == ["o/a", "o/c"]
    [(resource, rows)] = [(m["resource"], rows) for rows, m in out.ledger if not rows]
    assert resource == "o/b" and rows is None
    assert query(tmp_path, "select source, status from ops.quarantine") == [("commits", "open")]
    assert out.state == {"cursor:o/a": "2026-01-01T10:00:00Z", "cursor:o/c": "2026-01-03T10:00:00Z"}


def test_a_page_the_gate_quarantined_is_not_asked_again(tmp_path: Path, api: str) -> None:
    bad = {"records": [{"id": None, "updated_at": "2026-01-01T00:00:00Z"}], "next_cursor": None}
    Api.respond = lambda h, path, q: h.json(bad if not q else {"records": [], "next_cursor": None})
    first = run_feed(tmp_path, feed_source(api))
    assert first.status == "partial", first.error  # read, then refused by the contract: the gate's item
    Api.seen = []
    second = run_feed(tmp_path, feed_source(api))
    assert second.status == "partial"
    assert [q for _, q, _ in Api.seen] == [{"updated_since": "2025-12-31T23:59:59Z"}]  # its request is not re-asked
    assert query(tmp_path, "select status from ops.quarantine") == [("open",)]
