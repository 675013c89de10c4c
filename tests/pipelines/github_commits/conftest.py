"""A github_commits home: the stand-in on loopback, pages landed as the REST source lands
them (each response as received, its repository in the manifest), then the real gate, load
and dbt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Exchange:
    """One recorded request (path and query as sent) and the response GitHub gave it."""

    file: str
    request: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def recorded_exchanges(name: str) -> list[Exchange]:
    """Every request/response of one recording, in order: PyGithub's 11-line blocks or a
    betamax cassette (bodies gzip'd and base64-encoded; kept here as decoded bytes)."""
    import ast
    import base64
    import gzip
    from urllib.parse import urlsplit

    import orjson

    path = fixtures_dir() / name
    if path.suffix == ".txt":
        lines = path.read_text().split("\n")
        return [Exchange(name, block[4], int(block[7]), tuple(ast.literal_eval(block[8])), block[9].encode())
                for block in (lines[s:s + 11] for s in range(0, len(lines) - 10, 11))]
    exchanges = []
    for interaction in orjson.loads(path.read_bytes())["http_interactions"]:
        response, url = interaction["response"], urlsplit(interaction["request"]["uri"])
        body = response["body"]
        raw = base64.b64decode(body["base64_string"]) if body.get("base64_string") else body["string"].encode()
        headers = tuple((k, v if isinstance(v, str) else v[0]) for k, v in response["headers"].items()
                        if k.lower() != "content-encoding")  # the body is kept decoded
        exchanges.append(Exchange(name, url.path + (f"?{url.query}" if url.query else ""),
                                  int(response["status"]["code"]),
                                  headers, gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))
    return exchanges


LIST_RECORDINGS = {
    "pygithub_list_commits_3pages_2012.txt": "PyGithub/PyGithub",
    "pygithub_list_commits_modern_link_next_last_2026.txt": "PyGithub/PyGithub",
    "pygithub_list_commits_since_until_2pages_lastpage_2013.txt": "PyGithub/PyGithub",
    "github3py_betamax_list_commits_link_next_last_2018.json": "sigmavirus24/github3.py",
}


def is_list_page(exchange: Exchange) -> bool:
    import re

    return exchange.status == 200 and bool(re.search(r"/commits(\?|$)", exchange.request))


def recorded_list_pages() -> list[tuple[str, str, bytes]]:
    """(fixture file, repository, body) of every recorded 200 list-commits response."""
    return [(e.file, repo, e.body) for name, repo in sorted(LIST_RECORDINGS.items())
            for e in recorded_exchanges(name) if is_list_page(e)]
