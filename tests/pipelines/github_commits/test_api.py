"""The stand-in GitHub API over real HTTP: GitHub's shape (checked against recorded
responses), Link paging, since/until, the statuses a client must handle, and faults."""

from __future__ import annotations

import ast
import gzip
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from lakebox.errors import ConfigError
from lakebox.pipelines.github_commits.api import FaultPlan, RunningServer, create_app, serve_in_thread
from lakebox.pipelines.github_commits.history import REAL_REPO, build_histories
from tests.conftest import run_cli
from tests.pipelines.github_commits.conftest import fixtures_dir

SEED = 11
SYNTHETIC = "acme/payments-api"  # the first synthetic repository of seed 11 (305 of its 450 commits)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(2, 450, SEED)) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.delete("/_faults").raise_for_status()
        yield http
        http.delete("/_faults").raise_for_status()


def repos(client: httpx.Client) -> dict[str, int]:
    return client.get("/health").json()["repos"]


def paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON object (lists: their first element)."""
    if isinstance(value, list):
        return paths(value[0], prefix + "[].") if value else set()
    if not isinstance(value, dict):
        return set()
    return {p for key, item in value.items() for p in {prefix + key} | paths(item, prefix + key + ".")}


def recorded_modern_page() -> list[dict[str, Any]]:
    """The 2026 list-commits response recorded by PyGithub (blocks of 11 lines per request)."""
    lines = (fixtures_dir() / "pygithub_list_commits_modern_link_next_last_2026.txt").read_text().split("\n")
    return orjson.loads(lines[9])


def test_the_health_lists_real_synthetic_and_empty_repositories(client: httpx.Client) -> None:
    listed = repos(client)
    assert listed[REAL_REPO] == 3466
    synthetic = {name: n for name, n in listed.items() if name != REAL_REPO and n}
    assert len(synthetic) == 2 and sum(synthetic.values()) == 450 and SYNTHETIC in synthetic
    assert [name for name, n in listed.items() if n == 0] == ["acme/new-service-1"]


def test_a_commit_has_the_field_set_github_sends(client: httpx.Client) -> None:
    recorded = recorded_modern_page()
    served = client.get(f"/repos/{SYNTHETIC}/commits").json()
    mapped = next(c for c in served if c["author"] is not None and c["committer"] is not None)
    assert paths(mapped) == paths(recorded[0])
    assert all(paths(c) <= paths(recorded[0]) for c in served)  # an unmapped author is null, as on GitHub


def test_the_real_history_is_served_as_recorded(client: httpx.Client) -> None:
    recorded = gzip.decompress((fixtures_dir() / "real_history_commitlint_commits.jsonl.gz").read_bytes())
    first_page = client.get(f"/repos/{REAL_REPO}/commits", params={"per_page": 3}).json()
    assert first_page == [orjson.loads(line) for line in recorded.splitlines()[:3]]


def test_link_paging_lists_every_commit_once_newest_first(client: httpx.Client) -> None:
    shas: list[str] = []
    dates: list[str] = []
    url: str | None = f"/repos/{SYNTHETIC}/commits?per_page=100"
    pages: list[httpx.Response] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages.append(response)
        shas += [c["sha"] for c in response.json()]
        dates += [c["commit"]["committer"]["date"] for c in response.json()]
        url = response.links.get("next", {}).get("url")
    assert len(shas) == len(set(shas)) == repos(client)[SYNTHETIC]
    assert dates == sorted(dates, reverse=True)
    first, last = pages[0].links, pages[-1].links
    assert set(first) == {"next", "last"} and set(last) == {"prev", "first"}
    assert first["last"]["url"].endswith(f"page={len(pages)}") and "/repositories/" in first["next"]["url"]
    assert all(len(p.json()) == 100 for p in pages[:-1]) and 0 < len(pages[-1].json()) <= 100


def test_per_page_defaults_to_30_and_is_clamped_to_100(client: httpx.Client) -> None:
    assert len(client.get(f"/repos/{SYNTHETIC}/commits").json()) == 30
    assert len(client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 500}).json()) == 100
    assert client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": "x"}).status_code == 422


def test_since_and_until_filter_on_the_committer_date_and_survive_paging(client: httpx.Client) -> None:
    everything = client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 100}).json()
    since = everything[40]["commit"]["committer"]["date"]
    listed: list[dict[str, Any]] = []
    url: str | None = f"/repos/{SYNTHETIC}/commits?per_page=20&since={since}"
    while url:
        response = client.get(url)
        listed += response.json()
        url = response.links.get("next", {}).get("url")
        assert url is None or "since=" in url
    assert [c["sha"] for c in listed] == [c["sha"] for c in everything if c["commit"]["committer"]["date"] >= since]
    until = everything[10]["commit"]["committer"]["date"]
    window = client.get(f"/repos/{SYNTHETIC}/commits", params={"since": since, "until": until, "per_page": 100}).json()
    assert all(since <= c["commit"]["committer"]["date"] <= until for c in window) and len(window) >= 31
    assert client.get(f"/repos/{SYNTHETIC}/commits", params={"since": "yesterday"}).status_code == 422


def test_an_empty_repository_is_409_and_an_unknown_one_404(client: httpx.Client) -> None:
    empty = client.get("/repos/acme/new-service-1/commits")
    assert empty.status_code == 409 and empty.json()["message"] == "Git Repository is empty."
    unknown = client.get("/repos/nobody/nothing/commits")
    assert unknown.status_code == 404 and unknown.json()["message"] == "Not Found"
    for response in (empty, unknown):
        assert int(response.headers["X-RateLimit-Remaining"]) < int(response.headers["X-RateLimit-Limit"])


def test_rate_limit_headers_count_down_and_403_when_spent() -> None:
    with serve_in_thread(create_app(1, 10, SEED, real_history=False, rate_limit=2)) as small, \
            httpx.Client(base_url=small.url) as http:
        name = next(iter(repos(http)))
        answers = [http.get(f"/repos/{name}/commits") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert "rate limit exceeded" in answers[2].json()["message"]
    assert int(answers[2].headers["X-RateLimit-Reset"]) > time.time()


def test_a_configured_token_is_required() -> None:
    with serve_in_thread(create_app(1, 10, SEED, real_history=False, token="s3cret")) as guarded, \
            httpx.Client(base_url=guarded.url) as http:
        name = next(iter(repos(http)))
        assert http.get(f"/repos/{name}/commits").status_code == 401
        assert http.get(f"/repos/{name}/commits", headers={"Authorization": "Bearer wrong"}).json()["message"] == (
            "Bad credentials")
        assert http.get(f"/repos/{name}/commits", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_status_faults_say_what_github_says(client: httpx.Client) -> None:
    for spec in ({"kind": "rate_limit", "retry_after": 30}, {"kind": "secondary_rate_limit", "retry_after": 60},
                 {"kind": "500"}, {"kind": "unauthorized"}):
        client.post("/_faults", json=spec).raise_for_status()
    limited, secondary, failed, unauthorized, clean = (client.get(f"/repos/{SYNTHETIC}/commits") for _ in range(5))
    assert limited.status_code == 403 and limited.headers["X-RateLimit-Remaining"] == "0"
    assert 25 <= int(limited.headers["X-RateLimit-Reset"]) - time.time() <= 31
    assert secondary.status_code == 403 and secondary.headers["Retry-After"] == "60"
    assert "secondary rate limit" in secondary.json()["message"]
    assert (failed.status_code, unauthorized.status_code, clean.status_code) == (500, 401, 200)


def test_data_faults_spoil_the_page_and_keep_paging(client: httpx.Client) -> None:
    client.post("/_faults", json={"kind": "bad_sha"}).raise_for_status()
    spoiled = client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 25})
    clean = client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 25})
    assert [len(c["sha"]) for c in spoiled.json()].count(7) == 3
    assert spoiled.links == clean.links
    client.post("/_faults", json={"kind": "rename_field"}).raise_for_status()
    renamed = client.get(f"/repos/{SYNTHETIC}/commits").json()
    assert all("msg" in c["commit"] and "message" not in c["commit"] for c in renamed)


def test_histories_are_deterministic_by_seed() -> None:
    one, again, other = (build_histories(2, 300, seed, real_history=False) for seed in (5, 5, 6))
    assert {n: r.commits for n, r in one.items()} == {n: r.commits for n, r in again.items()}
    assert {r.commits.column("sha")[0] for r in one.values()} != {r.commits.column("sha")[0] for r in other.values()}


def test_synthetic_messages_look_like_a_team_using_conventional_commits() -> None:
    history = build_histories(1, 5000, SEED, real_history=False)
    messages = next(iter(history.values())).commits.column("message").to_pylist()
    import re

    types = [m.group(1) for m in map(re.compile(r"^(\w+)(\([^)]*\))?!?:").match, messages) if m]
    assert 0.8 < len(types) / len(messages) < 0.9  # merges and unprefixed commits carry no type
    assert {"feat", "fix", "docs", "chore", "refactor", "test"} <= set(types)
    assert sum(m.startswith("Merge pull request") for m in messages) / len(messages) > 0.05


@pytest.mark.parametrize("spec", ["teapot", "500:0", "bad_sha:x", "slow:delay=fast", "rate_limit:1:colour=red"])
def test_bad_fault_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="github API fault"):
        FaultPlan.parse([spec])


def test_the_command_refuses_a_bad_fault_spec(lakebox_env: dict[str, str]) -> None:
    result = run_cli("github-api", "--port", "0", "--fault", "teapot", env=lakebox_env)
    assert result.returncode == 2 and "unknown kind 'teapot'" in result.stderr


def test_the_command_needs_the_token_it_is_told_to_require(lakebox_env: dict[str, str]) -> None:
    result = run_cli("github-api", "--port", "0", "--require-token", env=lakebox_env)
    assert result.returncode == 2 and "set LAKEBOX_GITHUB_TOKEN" in result.stderr


def test_recorded_headers_name_the_same_rate_limit_fields_the_stand_in_sends(client: httpx.Client) -> None:
    lines = (fixtures_dir() / "pygithub_list_commits_modern_link_next_last_2026.txt").read_text().split("\n")
    recorded = {name.lower() for name, _ in ast.literal_eval(lines[8]) if name.lower().startswith("x-ratelimit")}
    served = {name.lower() for name in client.get(f"/repos/{SYNTHETIC}/commits").headers
              if name.lower().startswith("x-ratelimit")}
    assert served == recorded


def test_sha_lists_from_a_commit_or_the_default_branch(client: httpx.Client) -> None:
    everything = client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 100}).json()
    middle = everything[50]["sha"]
    from_middle = client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 100, "sha": middle}).json()
    assert [c["sha"] for c in from_middle] == [c["sha"] for c in everything[50:]] + [
        c["sha"] for c in client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 100, "page": 2}).json()
    ][: len(from_middle) - 50]
    assert client.get(f"/repos/{SYNTHETIC}/commits", params={"per_page": 100, "sha": "main"}).json() == everything
    missing = client.get(f"/repos/{SYNTHETIC}/commits", params={"sha": "0" * 40})
    assert missing.status_code == 404 and missing.json()["message"].startswith("No commit found for SHA")


def test_synthetic_commits_happen_mostly_on_working_days() -> None:
    import numpy as np

    history = next(iter(build_histories(1, 5000, SEED, real_history=False).values()))
    days = history.commits.column("committed_at").to_numpy() // 86400
    weekend_share = float(np.mean((days + 3) % 7 >= 5))
    assert 0.03 < weekend_share < 0.15  # 2 days of 7 would be 29%
