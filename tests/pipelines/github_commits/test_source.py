"""The GitHub source's configuration: settings from the environment, the first request of
each repository, and what each status means, checked against the stand-in over HTTP."""

from __future__ import annotations

import httpx
import pytest

from lakebox.errors import ConfigError, SourceFailedError
from lakebox.pipelines.github_commits.source import (
    DEFAULT_API_URL,
    GithubSource,
    auth_headers,
    github_api,
    on_status,
    parse_repos,
)

TOKEN = "ghp_not-a-real-token-0123456789"


def test_repositories_are_owner_slash_name_in_order_each_once() -> None:
    assert parse_repos(" acme/api, octocat/Hello-World ,acme/api,") == ("acme/api", "octocat/Hello-World")
    with pytest.raises(ConfigError, match=r"LAKEBOX_GITHUB_REPOS: 'just-a-name' is not owner/name"):
        parse_repos("acme/api,just-a-name")


def test_settings_default_to_the_public_api_and_the_whole_history() -> None:
    source = GithubSource.from_env({"LAKEBOX_GITHUB_REPOS": "acme/api"})
    assert (source.repos, source.api_url, source.since) == (("acme/api",), DEFAULT_API_URL, None)
    assert source.params(None) == {"per_page": 100}
    assert source.path("acme/api") == "/repos/acme/api/commits"


def test_the_next_fetch_starts_an_overlap_before_the_watermark() -> None:
    source = GithubSource.from_env({"LAKEBOX_GITHUB_SINCE": "2026-01-01T00:00:00Z",
                                    "LAKEBOX_GITHUB_OVERLAP_HOURS": "2"})
    assert source.params(None)["since"] == "2026-01-01T00:00:00Z"
    assert source.params("2026-03-10T12:30:00Z")["since"] == "2026-03-10T10:30:00Z"


@pytest.mark.parametrize(("name", "value"), [("LAKEBOX_GITHUB_SINCE", "last week"),
                                             ("LAKEBOX_GITHUB_OVERLAP_HOURS", "a while"),
                                             ("LAKEBOX_GITHUB_OVERLAP_HOURS", "-1")])
def test_bad_settings_are_config_errors_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        GithubSource.from_env({name: value})


def test_the_token_is_a_bearer_header_and_never_kept_in_the_source() -> None:
    env = {"LAKEBOX_GITHUB_TOKEN": TOKEN, "LAKEBOX_GITHUB_REPOS": "acme/api"}
    assert auth_headers(env)["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in auth_headers({})
    assert TOKEN not in repr(GithubSource.from_env(env))


def test_each_status_of_the_stand_in_means_what_the_source_says() -> None:
    with github_api({"LAKEBOX_DEMO_GITHUB_COMMITS": "300"}) as (url, repos), httpx.Client(base_url=url) as http:
        answers = {repo: http.get(f"/repos/{repo}/commits", params={"per_page": 1}) for repo in repos}
        unknown = http.get("/repos/nobody/nothing/commits")
        served = http.get("/health").json()["repos"]
    outcomes = {repo: on_status(a.status_code, repo, a.headers) for repo, a in answers.items()}
    assert outcomes.pop("acme/new-service-1") == "empty"
    assert set(outcomes.values()) == {"records"} and "conventional-changelog/commitlint" in outcomes
    assert len(outcomes) == 4 and sum(served.values()) == 3466 + 300
    with pytest.raises(SourceFailedError, match="repository nobody/nothing not found or token lacks access"):
        on_status(unknown.status_code, "nobody/nothing", unknown.headers)


def test_auth_and_rate_limit_statuses() -> None:
    with pytest.raises(SourceFailedError, match="token rejected: check LAKEBOX_GITHUB_TOKEN") as rejected:
        on_status(401, "acme/api", {})
    assert TOKEN not in str(rejected.value)
    assert on_status(403, "acme/api", {"X-RateLimit-Remaining": "0"}) == "retry"
    assert on_status(403, "acme/api", {"Retry-After": "60"}) == "retry"
    assert on_status(502, "acme/api", {}) == "retry"
    with pytest.raises(SourceFailedError, match="access to acme/api forbidden"):
        on_status(403, "acme/api", {"X-RateLimit-Remaining": "4999"})


def test_configured_repositories_use_the_configured_api() -> None:
    env = {"LAKEBOX_GITHUB_REPOS": "acme/api", "LAKEBOX_GITHUB_API_URL": "http://127.0.0.1:9/api/v3/"}
    with github_api(env) as (url, repos):
        assert (url, repos) == ("http://127.0.0.1:9/api/v3", ("acme/api",))


def test_a_bad_demo_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LAKEBOX_DEMO_GITHUB_COMMITS must be a whole number"), \
            github_api({"LAKEBOX_DEMO_GITHUB_COMMITS": "lots"}):
        pass
