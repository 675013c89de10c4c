"""The whole pipeline offline: the REST source against the bundled stand-in, the gate, the
load and dbt; then an incremental run and the statuses a user meets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lakebox.errors import SourceFailedError
from lakebox.pipelines.github_commits.api import create_app, serve_in_thread
from lakebox.pipelines.github_commits.fetch import fetch, rest_source
from lakebox.runner import RunContext
from lakebox.warehouse import ops
from tests.pipelines.github_commits.conftest import build, github_home, load, rows

TOKEN = "ghp_stand-in-token-0123456789"


@pytest.fixture
def ctx(lakebox_env: dict[str, str]) -> Iterator[RunContext]:
    with github_home({"LAKEBOX_DEMO_GITHUB_COMMITS": "600"}) as context:
        yield context


@pytest.mark.slow
def test_offline_run_lands_gates_loads_and_builds_every_repository(ctx: RunContext) -> None:
    fetched = fetch(ctx)
    assert fetched.rows_out == 3466 + 600
    load(ctx)
    assert rows(ctx.warehouse, "select count(*) from ops.batches where status <> 'loaded'")[0][0] == 0
    build(ctx)
    per_repo = dict(rows(ctx.warehouse, "select repo, count(*) from staging.stg_commits group by repo"))
    assert per_repo["conventional-changelog/commitlint"] == 3466 and sum(per_repo.values()) == 4066
    assert rows(ctx.warehouse, "select count(*) from ml.commit_features where label is not null")[0][0] > 3000
    def cursor(repo: str) -> str | None:
        return ops.get_state(ctx.warehouse, "github_commits", f"committed_at:{repo}")

    assert cursor("conventional-changelog/commitlint") == "2026-08-22T16:12:10Z"
    assert cursor("acme/new-service-1") is None  # empty: 409, no commits, no cursor


def test_a_second_run_refetches_only_the_overlap_and_staging_keeps_one_row(lakebox_env: dict[str, str]) -> None:
    with serve_in_thread(create_app(1, 300, 5, real_history=False, empty=0)) as server, \
            github_home({"LAKEBOX_GITHUB_OVERLAP_HOURS": "24"}) as ctx:
        repo = next(iter(httpx.get(f"{server.url}/health").json()["repos"]))
        values = ctx.settings.pipeline("github_commits")
        first = rest_source(values, server.url, [repo]).fetch(ctx)
        again = rest_source(values, server.url, [repo]).fetch(ctx)
        load(ctx)
        raw = rows(ctx.warehouse, "select count(*), count(distinct sha) from raw.github_commits")[0]
    assert first.rows_out == 300 and 0 < again.rows_out < 30
    assert raw == (300 + again.rows_out, 300)


@pytest.mark.parametrize(("status_app", "message"), [
    ({"token": TOKEN}, "token rejected: check LAKEBOX_GITHUB_TOKEN"),
    ({}, "repository nobody/nothing not found or token lacks access"),
])
def test_401_and_404_name_the_token_or_the_repository(lakebox_env: dict[str, str], status_app: dict[str, str],
                                                      message: str) -> None:
    with serve_in_thread(create_app(1, 10, 5, real_history=False, **status_app)) as server, \
            github_home({"LAKEBOX_GITHUB_TOKEN": "wrong-token-value"}) as ctx:
        repo = "nobody/nothing" if not status_app else next(iter(httpx.get(f"{server.url}/health").json()["repos"]))
        with pytest.raises(SourceFailedError, match=message) as failure:
            rest_source(ctx.settings.pipeline("github_commits"), server.url, [repo]).fetch(ctx)
    assert "wrong-token-value" not in str(failure.value)


def test_the_token_is_sent_and_never_written(lakebox_env: dict[str, str]) -> None:
    with serve_in_thread(create_app(1, 50, 5, real_history=False, token=TOKEN)) as server, \
            github_home({"LAKEBOX_GITHUB_TOKEN": TOKEN}) as ctx:
        repo = next(iter(httpx.get(f"{server.url}/health").json()["repos"]))
        assert rest_source(ctx.settings.pipeline("github_commits"), server.url, [repo]).fetch(ctx).rows_out == 50
        home = ctx.settings.home
    assert not [p for p in home.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
