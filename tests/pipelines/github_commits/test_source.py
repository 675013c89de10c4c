"""The GitHub source's settings (as `Settings` resolves them from the environment) and the
offline stand-in it falls back to."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from lakebox.errors import ConfigError
from lakebox.pipelines import get_spec
from lakebox.pipelines.github_commits.source import GithubSource, github_api, parse_repos, stand_in
from lakebox.settings import PipelineSettings, Settings


def values(**env: str) -> PipelineSettings:
    return Settings.load(env=env).pipeline("github_commits")


def test_repositories_are_owner_slash_name_in_order_each_once() -> None:
    assert parse_repos(" acme/api, octocat/Hello-World ,acme/api,") == ("acme/api", "octocat/Hello-World")
    with pytest.raises(ConfigError, match=r"LAKEBOX_GITHUB_REPOS: 'just-a-name' is not owner/name"):
        parse_repos("acme/api,just-a-name")


def test_settings_default_to_the_public_api_the_whole_history_and_a_72_hour_overlap() -> None:
    source = GithubSource.from_settings(values(LAKEBOX_GITHUB_REPOS="acme/api"))
    assert source == GithubSource(("acme/api",), "https://api.github.com", None, dt.timedelta(hours=72))
    configured = GithubSource.from_settings(values(LAKEBOX_GITHUB_API_URL="https://ghe.example/api/v3/",
                                                   LAKEBOX_GITHUB_SINCE="2026-01-01T00:00:00Z",
                                                   LAKEBOX_GITHUB_OVERLAP_HOURS="1.5"))
    assert (configured.api_url, configured.since, configured.overlap) == (
        "https://ghe.example/api/v3", "2026-01-01T00:00:00Z", dt.timedelta(minutes=90))


@pytest.mark.parametrize(("name", "value"), [("LAKEBOX_GITHUB_SINCE", "last week"),
                                             ("LAKEBOX_GITHUB_OVERLAP_HOURS", "a while"),
                                             ("LAKEBOX_GITHUB_OVERLAP_HOURS", "-1"),
                                             ("LAKEBOX_GITHUB_REPOS", "acme")])
def test_bad_settings_are_config_errors_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        GithubSource.from_settings(values(**{name: value}))


def test_the_token_is_not_kept_in_the_source() -> None:
    token = "ghp_not-a-real-token-0123456789"
    source = GithubSource.from_settings(values(LAKEBOX_GITHUB_TOKEN=token, LAKEBOX_GITHUB_REPOS="acme/api"))
    assert token not in repr(source)


def test_without_repositories_the_stand_in_serves_its_own() -> None:
    with github_api(values(LAKEBOX_DEMO_GITHUB_COMMITS="300")) as (url, repos), httpx.Client(base_url=url) as http:
        served = http.get("/health").json()["repos"]
        statuses = {repo: http.get(f"/repos/{repo}/commits").status_code for repo in repos}
    assert list(served) == list(repos) and sum(served.values()) == 3466 + 300
    assert statuses.pop("acme/new-service-1") == 409 and set(statuses.values()) == {200}


def test_configured_repositories_use_the_configured_api() -> None:
    env = {"LAKEBOX_GITHUB_REPOS": "acme/api", "LAKEBOX_GITHUB_API_URL": "http://127.0.0.1:9/api/v3/"}
    with github_api(values(**env)) as (url, repos):
        assert (url, repos) == ("http://127.0.0.1:9/api/v3", ("acme/api",))


def test_a_bad_demo_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LAKEBOX_DEMO_GITHUB_COMMITS"), \
            stand_in(values(LAKEBOX_DEMO_GITHUB_COMMITS="lots")):
        pass


def test_the_demo_feed_points_the_pipeline_at_the_stand_in_for_the_run_only(tmp_path: Path) -> None:
    settings = Settings.load(env={"LAKEBOX_GITHUB_REPOS": "octocat/Hello-World", "LAKEBOX_DEMO_GITHUB_COMMITS": "200"},
                             cwd=tmp_path)
    with get_spec("github_commits").demo_input(settings) as fed:
        url, repos = fed.settings["api_url"], fed.settings["repos"].split(",")
        assert "conventional-changelog/commitlint" in repos and "200 synthetic commits" in fed.note
        assert httpx.get(f"{url}/repos/{repos[1]}/commits").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
