"""What the GitHub commits source is, as data: for the generic REST source to fetch.

The fetch loop itself (paging, retries, landing each response as received, the cursor in
ops.source_state per repository) is `lakebox.ingest.rest`'s; this module says what is
GitHub-specific: which repositories, where, with which token, the request, the paging
(`Link: rel="next"`), the incremental cursor (the committer date, sent back as `since`
with an overlap) and what each status means for one repository.

With no repositories configured the source is offline: `github_api` starts the bundled
stand-in (`lakebox github-api`) in-process and lists its repositories.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

from lakebox.errors import ConfigError, LakeboxError, SourceFailedError
from lakebox.pipelines.github_commits.contract import CONTRACT, REPO_PATTERN
from lakebox.pipelines.github_commits.reader import RESOURCE_META_KEY

__all__ = ["RESOURCE_META_KEY", "GithubSource", "auth_headers", "github_api", "on_status", "parse_repos"]

SOURCE: Final = CONTRACT.source
REPOS_ENV: Final = "LAKEBOX_GITHUB_REPOS"
TOKEN_ENV: Final = "LAKEBOX_GITHUB_TOKEN"
API_URL_ENV: Final = "LAKEBOX_GITHUB_API_URL"
SINCE_ENV: Final = "LAKEBOX_GITHUB_SINCE"
OVERLAP_ENV: Final = "LAKEBOX_GITHUB_OVERLAP_HOURS"
DEFAULT_API_URL: Final = "https://api.github.com"
PER_PAGE: Final = 100
DEMO_COMMITS_ENV: Final = "LAKEBOX_DEMO_GITHUB_COMMITS"
DEMO_REPOS, DEMO_COMMITS, DEMO_SEED = 3, 2_000, 42
# `since` filters on the committer date, but a commit reaches GitHub when it is pushed,
# which can be days after it was committed: resume this far before the newest committer
# date seen, so late pushes are not missed. Commits seen twice become one row in staging.
DEFAULT_OVERLAP: Final = dt.timedelta(hours=72)

RECORDS_PATH: Final = "$"  # a bare JSON array
CURSOR_FIELD: Final = ("commit", "committer", "date")  # in each commit object
CURSOR_PARAM: Final = "since"
PAGINATION: Final = "LinkHeader"  # follow rel="next" verbatim (GitHub points at /repositories/{id}/...)
AUTH_HEADER: Final = "Authorization"
AUTH_FORMAT: Final = "Bearer {token}"
HEADERS: Final = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

# (key, environment variable, default, doc, secret): what the pipeline's spec declares.
SETTINGS: Final = (
    ("repos", REPOS_ENV, None, "comma-separated owner/name repositories; unset: the bundled stand-in's "
     "repositories, offline", False),
    ("token", TOKEN_ENV, None, "GitHub token, sent as a bearer token (environment only, never logged)", True),
    ("api_url", API_URL_ENV, DEFAULT_API_URL, "API base URL (GitHub Enterprise: https://HOST/api/v3)", False),
    ("since", SINCE_ENV, None, "ISO-8601 start of each repository's first fetch (default: the whole history)", False),
    ("overlap_hours", OVERLAP_ENV, f"{DEFAULT_OVERLAP / dt.timedelta(hours=1):g}",
     "hours to re-read before the newest committer date seen (late pushes)", False),
    ("demo_commits", DEMO_COMMITS_ENV, str(DEMO_COMMITS),
     "synthetic commits the offline stand-in serves in three repositories, besides commitlint's", False),
)

StatusOutcome = Literal["records", "empty", "retry"]


@dataclass(frozen=True)
class GithubSource:
    """The GitHub source's settings. The token is read from the environment when a request
    is made (`auth_headers`), never kept here, so it cannot reach a log or a repr."""

    repos: tuple[str, ...]
    api_url: str = DEFAULT_API_URL
    since: str | None = None
    overlap: dt.timedelta = DEFAULT_OVERLAP

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GithubSource:
        since = env.get(SINCE_ENV) or None
        if since is not None:
            _parse_time(since, SINCE_ENV)
        overlap = DEFAULT_OVERLAP
        if raw := env.get(OVERLAP_ENV):
            try:
                overlap = dt.timedelta(hours=float(raw))
            except ValueError:
                raise ConfigError(f"{OVERLAP_ENV} must be a number of hours, got {raw!r}") from None
            if overlap < dt.timedelta(0):
                raise ConfigError(f"{OVERLAP_ENV} must be >= 0 hours, got {raw!r}")
        return cls(repos=parse_repos(env.get(REPOS_ENV, "")),
                   api_url=(env.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/"), since=since, overlap=overlap)

    @staticmethod
    def path(repo: str) -> str:
        return f"/repos/{repo}/commits"

    def params(self, watermark: str | None) -> dict[str, str | int]:
        """The first request's query for one repository: its whole history, or since the
        start setting, or since its watermark less the overlap."""
        params: dict[str, str | int] = {"per_page": PER_PAGE}
        if watermark:
            params[CURSOR_PARAM] = _iso(_parse_time(watermark, "watermark") - self.overlap)
        elif self.since:
            params[CURSOR_PARAM] = self.since
        return params


def auth_headers(env: Mapping[str, str]) -> dict[str, str]:
    """GitHub's headers, with the token when one is set."""
    token = env.get(TOKEN_ENV)
    return {**HEADERS, **({AUTH_HEADER: AUTH_FORMAT.format(token=token)} if token else {})}


def parse_repos(text: str) -> tuple[str, ...]:
    """`owner/name` entries of a comma-separated list, in order, each once."""
    repos = [part.strip() for part in text.split(",") if part.strip()]
    bad = [r for r in repos if not re.fullmatch(REPO_PATTERN, r)]
    if bad:
        raise ConfigError(f"{REPOS_ENV}: {', '.join(repr(b) for b in bad)} is not owner/name; "
                          "list repositories as owner/name, separated by commas")
    return tuple(dict.fromkeys(repos))


def on_status(status: int, repo: str, headers: Mapping[str, str]) -> StatusOutcome:
    """What a response status means for one repository's fetch.

    200: records to land. 409 (empty repository): no commits, not an error. 403/429 with
    the rate limit spent, 5xx: retry (the REST source waits as the headers say). 401, 404
    and other 4xx: a terminal error naming the token or the repository."""
    if status == 200:
        return "records"
    if status == 409:
        return "empty"
    if status in (403, 429) and (_header(headers, "x-ratelimit-remaining") == "0" or _header(headers, "retry-after")):
        return "retry"
    if status >= 500:
        return "retry"
    raise status_error(status, repo)


def status_error(status: int, repo: str) -> LakeboxError:
    if status == 401:
        return SourceFailedError(f"source {SOURCE}: token rejected: check {TOKEN_ENV}")
    if status == 404:
        return SourceFailedError(f"source {SOURCE}: repository {repo} not found or token lacks access; "
                                 f"check {REPOS_ENV} and the token's access to it")
    if status == 403:
        return SourceFailedError(f"source {SOURCE}: access to {repo} forbidden (403); check the token's "
                                 "permissions and the organisation's policy for tokens")
    return SourceFailedError(f"source {SOURCE}: GitHub answered {status} for {repo}")


@contextmanager
def github_api(env: Mapping[str, str]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(base URL, repositories) to fetch: the configured ones, or, when no repository is
    configured, the bundled stand-in started in-process on a free port with its repositories
    (the real commitlint history, `LAKEBOX_DEMO_GITHUB_COMMITS` synthetic commits in three
    repositories, an empty one)."""
    source = GithubSource.from_env(env)
    if source.repos:
        yield source.api_url, source.repos
        return
    from lakebox.pipelines.github_commits.api import create_app, serve_in_thread

    commits = env.get(DEMO_COMMITS_ENV) or str(DEMO_COMMITS)
    if not commits.isdigit():
        raise ConfigError(f"{DEMO_COMMITS_ENV} must be a whole number of commits, got {commits!r}")
    app = create_app(DEMO_REPOS, int(commits), DEMO_SEED)
    with serve_in_thread(app) as server:
        yield server.url, app.state.repositories


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _parse_time(text: str, setting: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{setting}: {text!r} is not an ISO-8601 time such as 2026-01-31T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
