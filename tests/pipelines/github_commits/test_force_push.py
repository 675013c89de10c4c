"""History rewritten upstream: a force-push drops the newest 50 commits. An incremental run
cannot see that (nothing new since its cursor); a full refresh lists the whole history
again, marks the 50 in raw.github_commits_unreachable (raw keeps them), and the marts count
only the commits still in the history."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lakebox.pipelines.github_commits.api import create_app, serve_in_thread
from lakebox.pipelines.github_commits.fetch import fetch
from lakebox.pipelines.github_commits.history import Repo
from lakebox.warehouse import ops
from tests.conftest import fresh_database
from tests.pipelines.github_commits.conftest import build, github_home, load, rows


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """No setting for DuckDB (the home's own); for PostgreSQL a fresh database, dropped after."""
    if request.param == "duckdb":
        yield {}
        return
    with fresh_database(request.getfixturevalue("postgres_admin_dsn")) as url:
        yield {"LAKEBOX_WAREHOUSE": url}


def test_a_full_refresh_marks_commits_a_force_push_removed_and_the_marts_drop_them(
        lakebox_env: dict[str, str], warehouse: dict[str, str]) -> None:
    app = create_app(1, 300, 5, real_history=False, empty=0)
    with serve_in_thread(app) as server:
        repo = next(iter(httpx.get(f"{server.url}/health").json()["repos"]))
        with github_home({"LAKEBOX_GITHUB_REPOS": repo, "LAKEBOX_GITHUB_API_URL": server.url, **warehouse}) as ctx:
            def run(full_refresh: bool = False) -> None:
                ctx.extras["full_refresh"] = full_refresh
                fetch(ctx)
                load(ctx)
                build(ctx)

            def counted() -> tuple[int, int]:
                activity = rows(ctx.warehouse, "select sum(commits) from analytics.commit_activity")[0][0]
                trends = rows(ctx.warehouse, "select sum(commits) from analytics.commit_type_trends")[0][0]
                return int(activity), int(trends)

            run()
            assert counted() == (300, 300)
            history: Repo = app.state.histories[repo]
            app.state.histories[repo] = Repo(repo, history.commits.slice(50))  # reset --hard HEAD~50; push -f
            newest_left = rows(ctx.warehouse, "select max(committed_at) from raw.github_commits where sha not in "
                                              f"({', '.join(repr(s) for s in history.commits['sha'][:50].to_pylist())})")

            run()  # incremental: nothing new since the cursor, so nothing seen to vanish
            assert counted() == (300, 300)

            run(full_refresh=True)
            assert counted() == (250, 250)
            marked = rows(ctx.warehouse, "select sha from raw.github_commits_unreachable")
            assert sorted(s for (s,) in marked) == sorted(history.commits["sha"][:50].to_pylist())
            assert rows(ctx.warehouse, "select count(distinct sha) from raw.github_commits") == [(300,)]  # kept
            assert rows(ctx.warehouse, "select count(*), sum(case when is_reachable then 1 else 0 end) "
                                       "from staging.stg_commits") == [(300, 250)]
            assert rows(ctx.warehouse, "select count(*) from ml.commit_features") == [(250,)]
            cursor = ops.get_state(ctx.warehouse, "github_commits", f"committed_at:{repo}")
            assert cursor is not None and cursor.replace("Z", "") == newest_left[0][0].isoformat()  # moved back

            run(full_refresh=True)  # again: the same 50 marked again, nothing else
            assert counted() == (250, 250)
            assert rows(ctx.warehouse, "select count(distinct sha) from raw.github_commits_unreachable") == [(50,)]
