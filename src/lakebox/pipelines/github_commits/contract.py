"""The GitHub list-commits contract, declared once: it drives checks, raw DDL and docs.

One row per commit as a `GET /repos/{owner}/{repo}/commits` page lists it, flattened by
`reader.CommitPageReader` (which also names the source field each column comes from).
"""

from lakebox.quality import Column, Contract

SHA_PATTERN = "[0-9a-f]{40}"
REPO_PATTERN = "[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"

CONTRACT = Contract(
    source="github_commits",
    table="raw.github_commits",
    description=(
        "One row per commit as listed by GitHub (`GET /repos/{owner}/{repo}/commits`), newest "
        "first; `repo` is the repository the page was asked for. A commit seen again (an "
        "incremental fetch overlaps the last one) is loaded again and de-duplicated in "
        "`staging.stg_commits`. An empty page (no new commits) is a valid batch."
    ),
    columns=(
        Column("sha", "string", nullable=False, pattern=SHA_PATTERN, description="sha"),
        Column("repo", "string", nullable=False, pattern=REPO_PATTERN,
               description="owner/name: the repository the page was fetched for"),
        Column("author_name", "string", nullable=False, description="commit.author.name"),
        Column("author_email", "string", description="commit.author.email"),
        Column("authored_at", "timestamp", nullable=False, description="commit.author.date"),
        Column("committer_name", "string", description="commit.committer.name"),
        Column("committer_email", "string", description="commit.committer.email"),
        Column("committed_at", "timestamp", nullable=False, description="commit.committer.date"),
        Column("message", "string", nullable=False, description="commit.message"),
        Column("author_login", "string", description="author.login (null when GitHub maps no user)"),
        Column("committer_login", "string", description="committer.login"),
        Column("parent_count", "integer", nullable=False, min=0, description="length of parents"),
        Column("parent_shas", "string", description="parents[].sha as a JSON array"),
        Column("verified", "boolean", description="commit.verification.verified"),
        Column("comment_count", "integer", min=0, description="commit.comment_count"),
        Column("html_url", "string", description="html_url"),
    ),
    unique_key=("sha",),
    min_rows=0,
)
