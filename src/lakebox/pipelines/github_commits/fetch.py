"""The fetch stage: the platform's REST source (`lakebox.ingest.rest`) configured for
GitHub's list-commits endpoint — one resource per repository, each with its own cursor.

Pages are bare JSON arrays, newest first, linked by `Link: rel="next"` (followed verbatim:
GitHub points at /repositories/{id}/...). The cursor is the newest committer date, sent
back as `since` less the overlap; it advances with a repository's last page. 409 (an empty
repository) means no commits; 401, 403 (without a spent rate limit) and 404 fail that
repository with a message naming the token or the repository: the others are still
fetched, then the run fails naming it.

History rewritten upstream (a force-push) removes commits that were already loaded. A
full refresh (`lakebox run github_commits --full-refresh`) lists each repository's whole
history again and marks every loaded commit it no longer lists in
`raw.github_commits_unreachable` (repo, sha, marked_at, run_id; append-only): raw keeps the
commits, `stg_commits.is_reachable` is false for one marked after it was last ingested, and
the marts count reachable commits only. A marked commit that comes back (pushed again) is
reachable from its next ingestion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from lakebox.pipelines.github_commits.contract import CONTRACT
from lakebox.pipelines.github_commits.source import REPOS_ENV, TOKEN_ENV, GithubSource, PipelineValues, github_api

if TYPE_CHECKING:
    from lakebox.ingest.rest import Resource, RestSource
    from lakebox.lake import BatchManifest
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
UNREACHABLE: Final = "raw.github_commits_unreachable"
UNREACHABLE_COLUMNS: Final = ("repo", "sha", "marked_at", "run_id")


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
    """Land every new page of every repository (the bundled stand-in's when none is configured);
    on a full refresh, every page of each whole history, marking the commits it no longer lists."""
    values = ctx.settings.pipeline(CONTRACT.source)
    ensure_unreachable_table(ctx)
    with github_api(values) as (base_url, repos):
        source = rest_source(values, base_url, repos)
        if ctx.extras.get("full_refresh"):
            source = replace(source, from_start=True, listed=mark_unreachable)
        return source.fetch(ctx)


def ensure_unreachable_table(ctx: RunContext) -> None:
    """The marks' table, present before any dbt build reads it (empty until a full refresh)."""
    from lakebox.quality.contract import WAREHOUSE_TYPES

    string, stamp = WAREHOUSE_TYPES["string"], WAREHOUSE_TYPES["timestamp"]
    if not ctx.warehouse.table_exists(*UNREACHABLE.split(".")):
        ctx.warehouse.execute(f"create table if not exists {UNREACHABLE} (repo {string} not null, sha {string} not "
                              f"null, marked_at {stamp} not null, run_id {string} not null)")


def mark_unreachable(ctx: RunContext, resource: Resource, pages: Sequence[BatchManifest]) -> None:
    """Mark each commit of `resource` loaded in raw but absent from `pages`, its whole history
    as listed now (a force-push removed it). Nothing is deleted."""
    from lakebox.warehouse import ops
    from lakebox.warehouse.sql import literal

    wh, repo = ctx.warehouse, resource.key
    if not wh.table_exists(*CONTRACT.table.split(".")):
        return  # nothing loaded yet: nothing can have vanished
    con = wh.scratch()
    ctx.lake.register_with(con)
    listed = "select null as sha where false"
    if pages:
        uris = ", ".join(literal(ctx.lake.uri(m.key)) for m in pages)
        listed = f"select sha from read_json([{uris}], format = 'array', columns = {{'sha': 'VARCHAR'}})"
    con.register("lakebox_loaded_shas", wh.query_arrow(f"select distinct sha from {CONTRACT.table} where repo = ?",
                                                       [repo]))
    now = ops.utcnow().isoformat(sep=" ")
    gone = (f"select {literal(repo)} as repo, sha, timestamp {literal(now)} as marked_at, "
            f"{literal(ctx.run_id)} as run_id from lakebox_loaded_shas as loaded "
            f"where not exists (select 1 from ({listed}) as listed where listed.sha = loaded.sha)")
    try:
        with wh.transaction():
            marked = wh.load_from_scratch(gone, UNREACHABLE, UNREACHABLE_COLUMNS)
    finally:
        con.unregister("lakebox_loaded_shas")
    if marked:
        ctx.log.warning("commits no longer in the repository's history marked unreachable (raw keeps them)",
                        repo=repo, commits=marked, listed_pages=len(pages))
