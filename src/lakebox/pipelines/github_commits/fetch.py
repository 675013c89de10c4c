"""The fetch stage: the platform's REST source (`lakebox.ingest.rest`) configured for
GitHub's list-commits endpoint — one resource per repository, each with its own cursor.

Pages are bare JSON arrays, newest first, linked by `Link: rel="next"` (followed verbatim:
GitHub points at /repositories/{id}/...). The cursor is the newest committer date, sent
back as `since` less the overlap; it advances with a repository's last page. 409 (an empty
repository) means no commits; 401, 403 (without a spent rate limit) and 404 end the run
with a message naming the token or the repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from lakebox.pipelines.github_commits.contract import CONTRACT
from lakebox.pipelines.github_commits.source import REPOS_ENV, TOKEN_ENV, GithubSource, PipelineValues, github_api

if TYPE_CHECKING:
    from lakebox.ingest.rest import RestSource
    from lakebox.runner import RunContext, StageResult

PER_PAGE: Final = 100
CURSOR_FIELD: Final = "commit.committer.date"
CURSOR_STATE_KEY: Final = "committed_at"  # ops.source_state: committed_at:<owner/name>
HEADERS: Final = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
STATUS_MESSAGES: Final = {
    401: "source {source}: token rejected: check " + TOKEN_ENV,
    403: "source {source}: access to {resource} forbidden (403); check the token's permissions",
    404: "source {source}: repository {resource} not found or token lacks access; check " + REPOS_ENV,
}
EMPTY_REPOSITORY: Final = 409


def rest_source(values: PipelineValues, base_url: str, repos: Sequence[str]) -> RestSource:
    """GitHub's list-commits endpoint as a RestSource over `repos`."""
    from lakebox.ingest.rest import Auth, Incremental, LinkHeader, Resource, RestSource

    settings = GithubSource.from_settings(values)
    return RestSource(
        source=CONTRACT.source,
        base_url=base_url,
        path="/repos/{owner}/{name}/commits",
        records="$",
        pagination=LinkHeader(size_param="per_page", size=PER_PAGE),
        resources=tuple(Resource(key=repo, path_vars=dict(zip(("owner", "name"), repo.split("/"), strict=True)))
                        for repo in repos),
        incremental=Incremental(field=CURSOR_FIELD, param="since", overlap=settings.overlap,
                                state_key=CURSOR_STATE_KEY, start=settings.since, newest_first=True),
        auth=Auth(env=TOKEN_ENV),
        headers=HEADERS,
        statuses=STATUS_MESSAGES,
        empty_statuses=frozenset({EMPTY_REPOSITORY}),
    )


def fetch(ctx: RunContext) -> StageResult:
    """Land every new page of every repository (the bundled stand-in's when none is configured)."""
    values = ctx.settings.pipeline(CONTRACT.source)
    with github_api(values) as (base_url, repos):
        return rest_source(values, base_url, repos).fetch(ctx)
