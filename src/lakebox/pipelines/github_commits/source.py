"""Which repositories the GitHub source reads, and where: its settings, and the bundled
stand-in when none is configured (so the pipeline runs offline). `fetch` turns this into
the platform's REST source."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Protocol

from lakebox.errors import ConfigError
from lakebox.pipelines.github_commits.contract import REPO_PATTERN

REPOS_ENV: Final = "LAKEBOX_GITHUB_REPOS"
TOKEN_ENV: Final = "LAKEBOX_GITHUB_TOKEN"
API_URL_ENV: Final = "LAKEBOX_GITHUB_API_URL"
SINCE_ENV: Final = "LAKEBOX_GITHUB_SINCE"
OVERLAP_ENV: Final = "LAKEBOX_GITHUB_OVERLAP_HOURS"
DEMO_COMMITS_ENV: Final = "LAKEBOX_DEMO_GITHUB_COMMITS"
DEMO_REPOS, DEMO_SEED = 3, 42


class PipelineValues(Protocol):
    """The pipeline's settings by key (`Settings.pipeline("github_commits")`): None when unset."""

    def __getitem__(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class GithubSource:
    """The GitHub source's settings. The token is not among them: the REST source reads it
    from the environment when it sends a request, so it cannot reach a log or a repr.

    `since` filters on the committer date, but a commit reaches GitHub when it is pushed,
    which can be days after it was committed: each fetch starts `overlap` before the newest
    committer date seen, so late pushes are not missed; commits seen twice become one row
    in staging."""

    repos: tuple[str, ...]
    api_url: str
    since: str | None
    overlap: dt.timedelta

    @classmethod
    def from_settings(cls, values: PipelineValues) -> GithubSource:
        since = values["since"] or None
        if since is not None:
            try:
                dt.datetime.fromisoformat(since)
            except ValueError:
                raise ConfigError(f"{SINCE_ENV}: {since!r} is not an ISO-8601 time such as "
                                  "2026-01-31T00:00:00Z") from None
        raw = values["overlap_hours"] or "0"
        try:
            overlap = dt.timedelta(hours=float(raw))
        except ValueError:
            raise ConfigError(f"{OVERLAP_ENV} must be a number of hours, got {raw!r}") from None
        if overlap < dt.timedelta(0):
            raise ConfigError(f"{OVERLAP_ENV} must be >= 0 hours, got {raw!r}")
        api_url = values["api_url"]
        if not api_url:
            raise ConfigError(f"{API_URL_ENV} is empty; unset it for the public API")
        return cls(repos=parse_repos(values["repos"] or ""), api_url=api_url.rstrip("/"), since=since,
                   overlap=overlap)


def parse_repos(text: str) -> tuple[str, ...]:
    """`owner/name` entries of a comma-separated list, in order, each once."""
    repos = [part.strip() for part in text.split(",") if part.strip()]
    bad = [r for r in repos if not re.fullmatch(REPO_PATTERN, r)]
    if bad:
        raise ConfigError(f"{REPOS_ENV}: {', '.join(repr(b) for b in bad)} is not owner/name; "
                          "list repositories as owner/name, separated by commas")
    return tuple(dict.fromkeys(repos))


@contextmanager
def github_api(values: PipelineValues) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(base URL, repositories) to fetch: the configured ones, or, when no repository is
    configured, the bundled stand-in's (see `stand_in`)."""
    source = GithubSource.from_settings(values)
    if source.repos:
        yield source.api_url, source.repos
        return
    with stand_in(values) as served:
        yield served


@contextmanager
def stand_in(values: PipelineValues) -> Iterator[tuple[str, tuple[str, ...]]]:
    """The bundled stand-in on a free loopback port, and its repositories: commitlint's
    real history, `demo_commits` synthetic commits in three repositories, an empty one."""
    from lakebox.pipelines.github_commits.api import create_app, serve_in_thread

    commits = values["demo_commits"] or ""
    if not commits.isdigit():
        raise ConfigError(f"{DEMO_COMMITS_ENV} must be a whole number of commits, got {commits!r}")
    app = create_app(DEMO_REPOS, int(commits), DEMO_SEED)
    with serve_in_thread(app) as server:
        yield server.url, app.state.repositories
