"""The gate on list-commits pages: recorded GitHub responses of three API generations load;
a bad sha, a missing message, a renamed field, an unparseable date or a repeated commit
quarantine their page (and only it), naming rule and column."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from lakebox.pipelines.github_commits.api import create_app, serve_in_thread
from lakebox.pipelines.github_commits.reader import CommitPageReader
from lakebox.runner import RunContext
from lakebox.warehouse import ops
from tests.pipelines.github_commits.conftest import github_home, land_pages, load, recorded_list_pages, rows

REPO = "acme/payments-api"  # seed 11's first synthetic repository: 305 commits of 450


@pytest.fixture
def ctx(lakebox_env: dict[str, str]) -> Iterator[RunContext]:
    with github_home() as context:
        yield context


def batch_states(ctx: RunContext) -> dict[str, str]:
    return dict(rows(ctx.warehouse, "select batch_id, status from ops.batches where source = 'github_commits'"))


def failed_rules(ctx: RunContext, batch_id: str) -> set[tuple[str, str | None, int]]:
    """(rule, column, failing rows) of every check the batch failed, as ops.dq_results holds them."""
    return set(rows(ctx.warehouse, "select check_name, column_name, failing_rows from ops.dq_results "
                                   f"where batch_id = '{batch_id}' and not passed"))


def test_recorded_responses_of_every_api_generation_pass_the_gate(ctx: RunContext) -> None:
    pages = recorded_list_pages()
    commits = set()
    for _, repo, body in pages:
        ops.record_landed(ctx.warehouse, ctx.lake.land_batch("github_commits", body, "json",
                                                             meta={"resource": repo}), ctx.run_id)
        commits |= {(repo, c["sha"]) for c in orjson.loads(body)}
    result = load(ctx)
    assert set(batch_states(ctx).values()) == {"loaded"}
    assert set(rows(ctx.warehouse, "select repo, sha from raw.github_commits")) == commits
    assert result.rows_out == len(rows(ctx.warehouse, "select * from raw.github_commits"))
    # 2012's responses carry no verification, html_url or comment_count: null, not drift
    old = rows(ctx.warehouse, "select count(*), count(verified), count(html_url), count(author_login) "
                              "from raw.github_commits where authored_at < '2012-12-31'")[0]
    assert old[0] > 0 and old[1:3] == (0, 0) and old[3] > 0
    modern = rows(ctx.warehouse, "select author_name, authored_at, parent_count, parent_shas, verified, html_url "
                                 "from raw.github_commits where sha = '0791cc7b1a706ab5d7c607ddff35de4d486ba3e9'")
    assert modern[0][0] == "Enrico Minack" and str(modern[0][1]) == "2023-08-28 18:27:45"
    assert modern[0][2] == 1 and len(orjson.loads(modern[0][3])) == 1 and modern[0][4] is False
    assert modern[0][5].startswith("https://github.com/PyGithub/PyGithub/commit/")


def test_stand_in_pages_load_with_their_repository(ctx: RunContext) -> None:
    with serve_in_thread(create_app(2, 450, 11)) as server:
        landed = land_pages(ctx, server.url, REPO)
        land_pages(ctx, server.url, "conventional-changelog/commitlint", {"since": "2026-06-01T00:00:00Z"})
    assert len(landed) == 4
    load(ctx)
    counts = dict(rows(ctx.warehouse, "select repo, count(*) from raw.github_commits group by repo"))
    assert counts[REPO] == 305 and 0 < counts["conventional-changelog/commitlint"] < 3466
    assert set(batch_states(ctx).values()) == {"loaded"}


@pytest.mark.parametrize(
    ("fault", "rule", "column", "failing"),
    [
        ("bad_sha", "pattern", "sha", 10),
        ("missing_message", "not_null", "message", 10),
        ("bad_date", "type", "authored_at", 10),
        ("duplicate_sha", "unique", "sha", 10),
        ("rename_field", "schema_drift", "message", 0),
    ],
)
def test_a_spoiled_page_is_quarantined_alone(ctx: RunContext, fault: str, rule: str, column: str,
                                              failing: int) -> None:
    with serve_in_thread(create_app(2, 450, 11, real_history=False)) as server:
        httpx.post(f"{server.url}/_faults", json={"kind": fault}).raise_for_status()
        landed = land_pages(ctx, server.url, REPO)  # the fault spoils the first of 4 pages
    load(ctx)
    states = batch_states(ctx)
    assert states[landed[0].batch_id] == "quarantined"
    assert all(states[m.batch_id] == "loaded" for m in landed[1:])
    assert rows(ctx.warehouse, "select count(*) from raw.github_commits")[0][0] == 205  # 305 less the first page
    assert (rule, column, failing) in failed_rules(ctx, landed[0].batch_id)
    errors = next(k for k in ctx.lake.list("quarantine/github_commits") if k.endswith(".errors.json"))
    text = ctx.lake.read_bytes(errors).decode()
    assert landed[0].batch_id in text and f'"{rule}"' in text and f'"{column}"' in text and "contract.py" in text


def test_a_page_that_is_not_a_list_is_quarantined_as_unparseable(ctx: RunContext) -> None:
    body = b'{"message": "Git Repository is empty.", "status": "409"}'
    manifest = ctx.lake.land_batch("github_commits", body, "json", meta={"resource": REPO})
    ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
    load(ctx)
    assert batch_states(ctx)[manifest.batch_id] == "quarantined"
    assert [rule for rule, _, _ in failed_rules(ctx, manifest.batch_id)] == ["parse"]


def test_an_empty_page_is_a_valid_batch_of_no_commits(ctx: RunContext) -> None:
    manifest = ctx.lake.land_batch("github_commits", b"[]", "json", meta={"resource": REPO})
    ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
    assert load(ctx).rows_out == 0
    assert batch_states(ctx)[manifest.batch_id] == "loaded" and failed_rules(ctx, manifest.batch_id) == set()


def test_the_repository_comes_from_the_manifest_else_from_the_commit_url(ctx: RunContext) -> None:
    _, _, body = next(p for p in recorded_list_pages() if p[0].startswith("github3py"))
    with_resource = ctx.lake.land_batch("github_commits", body, "json", meta={"resource": "someone/renamed"})
    without = ctx.lake.land_batch("github_commits", body[:-1] + b" ]", "json")
    con = ctx.warehouse.scratch()
    reader = CommitPageReader()
    uris = [ctx.lake.uri(with_resource.key), ctx.lake.uri(without.key)]
    reader.prepare(con, uris)
    repos = [set(con.execute(f"select distinct repo from ({reader.select_sql(con, uri)})").fetchall()) for uri in uris]
    assert repos == [{("someone/renamed",)}, {("sigmavirus24/github3.py",)}]


def test_pages_read_together_equal_pages_read_alone(ctx: RunContext) -> None:
    pages = recorded_list_pages()
    uris = [ctx.lake.uri(ctx.lake.land_batch("github_commits", body, "json", meta={"resource": repo}).key)
            for _, repo, body in pages]
    con = ctx.warehouse.scratch()
    together = CommitPageReader()
    together.prepare(con, uris)
    for uri in dict.fromkeys(uris):
        bulk = sorted(con.execute(together.select_sql(con, uri)).fetchall())
        alone = sorted(con.execute(CommitPageReader().select_sql(con, uri)).fetchall())
        assert bulk == alone and bulk
