"""The fetch stage: the platform's REST source (`lakebox.ingest.rest`), configured for
GitHub by `source` — one resource per repository, each with its own cursor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lakebox.pipelines.github_commits.source import (
    CURSOR_FIELD,
    CURSOR_PARAM,
    HEADERS,
    PER_PAGE,
    RECORDS_PATH,
    REPOS_ENV,
    SOURCE,
    TOKEN_ENV,
    GithubSource,
    github_api,
)

if TYPE_CHECKING:
    from lakebox.ingest.rest import RestSource
    from lakebox.runner import RunContext, StageResult

CURSOR_STATE_KEY = "committed_at"  # ops.source_state: committed_at:<owner/name>
STATUS_MESSAGES = {
    401: "source {source}: token rejected: check " + TOKEN_ENV,
    403: "source {source}: access to {resource} forbidden (403); check the token's permissions",
    404: "source {source}: repository {resource} not found or token lacks access; check " + REPOS_ENV,
}
EMPTY_REPOSITORY = 409


def rest_source(env: Mapping[str, str], base_url: str, repos: Sequence[str]) -> RestSource:
    """GitHub's list-commits endpoint as a RestSource over `repos`."""
    from lakebox.ingest.rest import Auth, Incremental, LinkHeader, Resource, RestSource

    settings = GithubSource.from_env(env)
    return RestSource(
        source=SOURCE,
        base_url=base_url,
        path="/repos/{owner}/{name}/commits",
        records=RECORDS_PATH,
        pagination=LinkHeader(size_param="per_page", size=PER_PAGE),
        resources=tuple(Resource(key=repo, path_vars=dict(zip(("owner", "name"), repo.split("/"), strict=True)))
                        for repo in repos),
        incremental=Incremental(field=".".join(CURSOR_FIELD), param=CURSOR_PARAM, overlap=settings.overlap,
                                state_key=CURSOR_STATE_KEY, start=settings.since, newest_first=True),
        auth=Auth(env=TOKEN_ENV),
        headers=HEADERS,
        statuses=STATUS_MESSAGES,
        empty_statuses=frozenset({EMPTY_REPOSITORY}),
    )


def fetch(ctx: RunContext) -> StageResult:
    """Land every new page of every repository (the bundled stand-in's when none is configured)."""
    with github_api(ctx.settings.env) as (base_url, repos):
        return rest_source(ctx.settings.env, base_url, repos).fetch(ctx)
