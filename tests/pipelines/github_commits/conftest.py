"""A github_commits home: the stand-in on loopback, pages landed as the REST source lands
them (each response as received, its repository in the manifest), then the real gate, load
and dbt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from lakebox.lake import BatchManifest, Lake
from lakebox.runner import RunContext, StageResult
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse, open_warehouse, ops

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "github"


def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded GitHub responses not found at {FIXTURES} (clone shared/ beside the repo)")
    return FIXTURES


@contextmanager
def github_home(env: dict[str, str] | None = None) -> Iterator[RunContext]:
    """A run context over the home in the environment (LAKEBOX_HOME, LAKEBOX_WAREHOUSE)."""
    settings = Settings.load(env=dict(os.environ) | (env or {}))
    with open_warehouse(settings) as wh:
        yield RunContext(settings, Lake.from_settings(settings), wh, "test-run", "github_commits")


def land_pages(ctx: RunContext, base_url: str, repo: str, params: dict[str, str | int] | None = None,
               headers: dict[str, str] | None = None) -> list[BatchManifest]:
    """Every page of one repository's commits, landed as received and recorded in the ledger."""
    landed = []
    url: str | None = f"{base_url}/repos/{repo}/commits"
    query: dict[str, str | int] | None = {"per_page": 100, **(params or {})}
    with httpx.Client(timeout=30, headers=headers) as client:
        while url:
            response = client.get(url, params=query)
            response.raise_for_status()
            manifest = ctx.lake.land_batch("github_commits", response.content, "json",
                                           meta={"resource": repo, "request": str(response.url)})
            ops.record_landed(ctx.warehouse, manifest, ctx.run_id)
            landed.append(manifest)
            url, query = response.links.get("next", {}).get("url"), None
    return landed


def load(ctx: RunContext) -> StageResult:
    from lakebox.pipelines.github_commits.pipeline import load as load_stage

    return load_stage(ctx)


def build(ctx: RunContext, *select: str) -> None:
    from lakebox.transform.dbt import run_dbt

    run_dbt(ctx.settings, ctx.warehouse, list(select) or ["path:models/github_commits"])


def rows(wh: Warehouse, sql: str) -> list[tuple]:
    return [tuple(r) for r in wh.query(sql)]


def recorded_list_pages() -> list[tuple[str, str, bytes]]:
    """(fixture file, repository, body) of every recorded 200 list-commits response."""
    import base64
    import gzip
    import re

    import orjson

    pages = []
    folder = fixtures_dir()
    for path in sorted(folder.glob("pygithub_list_commits_*.txt")):
        lines = path.read_text().split("\n")
        for start in range(0, len(lines) - 10, 11):
            block = lines[start:start + 11]
            if block[7] == "200" and block[9].startswith("["):
                pages.append((path.name, "PyGithub/PyGithub", block[9].encode()))
    cassette = orjson.loads((folder / "github3py_betamax_list_commits_link_next_last_2018.json").read_bytes())
    for interaction in cassette["http_interactions"]:
        uri, body = interaction["request"]["uri"], interaction["response"]["body"]
        if re.search(r"/commits(\?|$)", uri):
            raw = base64.b64decode(body["base64_string"]) if body.get("base64_string") else body["string"].encode()
            pages.append(("github3py_betamax_list_commits_link_next_last_2018.json", "sigmavirus24/github3.py",
                          gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))
    return pages
