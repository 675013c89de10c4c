"""The github_commits dbt models on known commits, on DuckDB and on PostgreSQL: parsing of
conventional prefixes, de-duplication of commits seen twice, the marts and the ML features."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest

from lakebox.runner import RunContext
from lakebox.warehouse import ops
from tests.pipelines.github_commits.conftest import build, github_home, load

REPO, FORK = "acme/demo", "acme/demo-fork"
ADA = ("Ada Lovelace", "ada@example.com", "ada")
GRACE = ("Grace Hopper", "grace@Example.ORG", None)


def sha(number: int) -> str:
    return f"{number:040x}"


def commit(number: int, message: str, when: str, who: tuple[str, str, str | None] = ADA, parents: int = 1,
           verified: bool = False) -> dict[str, Any]:
    """A list-commits object in GitHub's shape (the fields the pipeline reads, and a few more)."""
    name, email, login = who
    person = {"name": name, "email": email, "date": when}
    return {
        "sha": sha(number),
        "commit": {"author": person, "committer": person, "message": message, "comment_count": 0,
                   "verification": {"verified": verified, "reason": "valid" if verified else "unsigned"}},
        "url": f"https://api.github.com/repos/{REPO}/commits/{sha(number)}",
        "html_url": f"https://github.com/{REPO}/commit/{sha(number)}",
        "author": {"login": login, "id": 1} if login else None,
        "committer": {"login": login, "id": 1} if login else None,
        "parents": [{"sha": sha(1000 + number + p)} for p in range(parents)],
    }


PAGE = [
    commit(6, "Chore(deps): bump x", "2026-06-08T10:30:00Z", GRACE),
    commit(5, "Update README.md", "2026-06-08T08:00:00Z", GRACE),
    commit(4, "docs: explain setup\n\nBREAKING CHANGE: config moved", "2026-06-03T16:45:00Z", GRACE),
    commit(3, "Merge pull request #7 from ada/topic", "2026-06-02T10:00:00Z", parents=2),
    commit(2, "fix: handle empty input", "2026-06-01T14:00:00Z"),
    commit(1, "feat(api)!: add search\n\nBody text.\r\n", "2026-06-01T09:15:00Z"),
]
# Fetched again by an overlapping run: commit 2, now verified. And a fork holding commit 1.
AGAIN = [commit(2, "fix: handle empty input", "2026-06-01T14:00:00Z", verified=True)]
FORKED = [commit(1, "feat(api)!: add search\n\nBody text.\r\n", "2026-06-01T09:15:00Z")]


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunContext]:
    """Built once per warehouse for the module's tests (a dbt build is seconds)."""
    with pytest.MonkeyPatch.context() as patch, _database(request) as warehouse:
        home = tmp_path_factory.mktemp("github-home")
        patch.setenv("LAKEBOX_HOME", str(home))
        patch.delenv("LAKEBOX_LAKE", raising=False)
        patch.delenv("LAKEBOX_CONFIG", raising=False)
        patch.delenv("LAKEBOX_LANDING", raising=False)
        if warehouse:
            patch.setenv("LAKEBOX_WAREHOUSE", warehouse)
        else:
            patch.delenv("LAKEBOX_WAREHOUSE", raising=False)
        patch.chdir(home)
        with github_home() as ctx:
            for repo, page in ((REPO, PAGE), (REPO, AGAIN), (FORK, FORKED)):
                manifest = ctx.lake.land_batch("github_commits", orjson.dumps(page), "json", meta={"resource": repo})
                ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
                load(ctx)  # one load each: the second copy of commit 2 is ingested later
            build(ctx)
            yield ctx


@contextmanager
def _database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for DuckDB; for PostgreSQL the URL of a fresh database, dropped afterwards."""
    if request.param == "duckdb":
        yield None
        return
    import psycopg

    admin = request.getfixturevalue("postgres_admin_dsn")
    name = f"lakebox_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'create database "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')


def table(ctx: RunContext, sql: str) -> list[dict[str, Any]]:
    return ctx.warehouse.query_arrow(sql).to_pylist()


@pytest.mark.slow
def test_stg_commits_parses_prefixes_and_keeps_one_row_per_repo_and_commit(built: RunContext) -> None:
    staged = {(r["repo"], r["sha"]): r for r in table(built, "select * from staging.stg_commits")}
    assert len(staged) == 7  # six commits, one seen twice, and the fork's copy of commit 1
    first = staged[(REPO, sha(1))]
    assert (first["conventional_type"], first["conventional_scope"], first["is_breaking"]) == ("feat", "api", True)
    assert (first["message_subject"], first["message_body"]) == ("feat(api)!: add search", "Body text.")
    assert staged[(REPO, sha(2))]["verified"] is True  # the copy ingested last wins
    assert staged[(REPO, sha(3))]["is_merge"] is True and staged[(REPO, sha(3))]["conventional_type"] is None
    docs = staged[(REPO, sha(4))]
    assert (docs["conventional_type"], docs["conventional_scope"], docs["is_breaking"]) == ("docs", None, True)
    assert docs["author_email_domain"] == "example.org" and docs["author_login"] is None
    assert staged[(REPO, sha(5))]["conventional_type"] is None
    assert (staged[(REPO, sha(6))]["conventional_type"], staged[(REPO, sha(6))]["conventional_scope"]) == (
        "chore", "deps")
    assert staged[(FORK, sha(1))]["conventional_type"] == "feat"
    assert staged[(REPO, sha(1))]["committed_at"] == dt.datetime(2026, 6, 1, 9, 15)


@pytest.mark.slow
def test_commit_activity_counts_per_repo_author_and_day(built: RunContext) -> None:
    activity = table(built, "select author_name, activity_date, commits, merges, conventional_commits, "
                            "distinct_types, breaking_changes from analytics.commit_activity "
                            f"where repo = '{REPO}' order by activity_date")
    assert [tuple(r.values()) for r in activity] == [
        ("Ada Lovelace", dt.date(2026, 6, 1), 2, 0, 2, 2, 1),
        ("Ada Lovelace", dt.date(2026, 6, 2), 1, 1, 0, 0, 0),
        ("Grace Hopper", dt.date(2026, 6, 3), 1, 0, 1, 1, 1),
        ("Grace Hopper", dt.date(2026, 6, 8), 2, 0, 1, 1, 0),
    ]


@pytest.mark.slow
def test_commit_type_trends_share_each_week_between_types(built: RunContext) -> None:
    trends = table(built, "select week_start, commit_type, commits, share from analytics.commit_type_trends "
                          f"where repo = '{REPO}' order by week_start, commit_type")
    assert [(r["week_start"], r["commit_type"], r["commits"]) for r in trends] == [
        (dt.date(2026, 6, 1), "docs", 1), (dt.date(2026, 6, 1), "feat", 1), (dt.date(2026, 6, 1), "fix", 1),
        (dt.date(2026, 6, 1), "merge", 1), (dt.date(2026, 6, 8), "chore", 1), (dt.date(2026, 6, 8), "none", 1),
    ]
    assert [r["share"] for r in trends] == pytest.approx([0.25] * 4 + [0.5] * 2)


@pytest.mark.slow
def test_commit_features_hold_exactly_what_the_classifier_reads(built: RunContext) -> None:
    features = table(built, f"select * from ml.commit_features where repo = '{REPO}' order by committed_at")
    assert list(features[0]) == ["sha", "repo", "author_key", "committed_at", "hour", "weekday", "message_body",
                                 "message_length", "is_merge", "parent_count", "author_prior_commits", "label"]
    first = features[0]
    assert first["message_body"] == "add search\nBody text." and first["message_length"] == len(first["message_body"])
    assert (first["hour"], first["weekday"], first["label"], first["is_merge"]) == (9, 1, "feat", False)
    assert [f["author_prior_commits"] for f in features] == [0, 1, 2, 0, 1, 2]  # Ada x3, then Grace x3
    assert [f["label"] for f in features] == ["feat", "fix", None, "docs", None, "chore"]
    assert features[3]["message_body"] == "explain setup\nBREAKING CHANGE: config moved"
    assert features[4]["message_body"] == "Update README.md"  # no prefix: the subject stays whole
    assert features[2]["parent_count"] == 2 and features[5]["weekday"] == 1
    assert len({f["author_key"] for f in features}) == 2


@pytest.mark.slow
def test_a_repeated_commit_in_staging_fails_the_key_test(built: RunContext) -> None:
    from lakebox.errors import TransformError
    from lakebox.transform.dbt import run_dbt

    wh = built.warehouse
    wh.execute("create table staging.stg_commits_kept as select * from staging.stg_commits")
    try:
        wh.execute(f"insert into staging.stg_commits select * from staging.stg_commits where sha = '{sha(4)}'")
        with pytest.raises(TransformError, match="primary_key_stg_commits"):
            run_dbt(built.settings, wh, ["stg_commits"], command="test")
    finally:
        wh.execute("delete from staging.stg_commits")
        wh.execute("insert into staging.stg_commits select * from staging.stg_commits_kept")
        wh.execute("drop table staging.stg_commits_kept")
