"""A stand-in for GitHub's list-commits API, so the pipeline runs with no network.

    GET /repos/{owner}/{repo}/commits?per_page=&page=&since=&until=&sha=
    GET /repositories/{id}/commits?...           (where GitHub's own Link headers point)
        200 a bare JSON array of commit objects, newest first, GitHub's 2026 field set;
            per_page 1..100 (default 30, larger values clamped to 100, as GitHub does),
            page from 1; since/until filter on the committer date (inclusive);
            sha: a commit of the history (list from it) or the default branch `main`.
            `Link: <...page=2>; rel="next", <...page=N>; rel="last"` (and prev/first
            after page 1), `X-RateLimit-Limit|Remaining|Reset|Used|Resource` on every answer.
        401 bad credentials (a token is configured and the request does not carry it)
        403 rate limit exhausted (X-RateLimit-Remaining: 0, X-RateLimit-Reset)
        404 unknown repository; 409 an empty repository; 422 a bad parameter
    GET /health                 {"ok": true, "repos": {"owner/name": commits, ...}}
    GET|POST|DELETE /_faults    list, add ({"kind", "count", "retry_after", "delay"}), clear

Repositories: commitlint's real history (`conventional-changelog/commitlint`), `repos`
synthetic ones sharing `commits` commits (see `history`), and `empty` empty ones. Faults
(see `lakebox.ingest.standin`): `rate_limit` (403, remaining 0, reset in retry_after s),
`secondary_rate_limit` (403 with Retry-After), `429`, `500`, `502`, `unauthorized`, `slow`,
`malformed`; data faults spoil about one commit in ten of the page: `bad_sha`,
`missing_message`, `bad_date`, `duplicate_sha`, and `rename_field` renames commit.message
to commit.msg in every commit of the page (drift).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lakebox.errors import ConfigError
from lakebox.ingest import standin
from lakebox.ingest.standin import RunningServer, serve_in_thread
from lakebox.pipelines.github_commits.history import Repo, build_histories, commit_objects

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan", "RunningServer", "create_app", "serve_forever", "serve_in_thread"]

FAULT_KINDS: Final = (
    "rate_limit", "secondary_rate_limit", "429", "500", "502", "unauthorized", "slow", "malformed",
    "bad_sha", "missing_message", "bad_date", "duplicate_sha", "rename_field",
)
DEFAULT_PER_PAGE: Final = 30
MAX_PER_PAGE: Final = 100
DEFAULT_BRANCH: Final = "main"
REPOSITORY_ID_BASE: Final = 100_000
DOCS: Final = "https://docs.github.com/rest/commits/commits#list-commits"
RATE_DOCS: Final = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
JSON_TYPE: Final = "application/json; charset=utf-8"


@dataclass
class Fault(standin.Fault):
    """One misbehaviour of the GitHub stand-in (see `lakebox.ingest.standin.Fault`)."""

    KINDS: ClassVar[tuple[str, ...]] = FAULT_KINDS
    API: ClassVar[str] = "github API"


class FaultPlan(standin.FaultPlan[Fault]):
    """The queue of faults that the next requests for commits meet."""

    fault_type = Fault


class _RateLimit:
    """GitHub's core rate limit: `limit` requests per hour from the server's start."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self.reset = int(time.time()) + 3600
        self._lock = threading.Lock()

    def spend(self) -> dict[str, str]:
        """Count one request; its X-RateLimit-* headers (Remaining 0 once exhausted)."""
        with self._lock:
            self.used = min(self.used + 1, self.limit + 1)
            return self.headers(max(0, self.limit - self.used), self.reset)

    def exhausted(self) -> bool:
        return self.used > self.limit

    def headers(self, remaining: int, reset: int) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(reset), "X-RateLimit-Used": str(min(self.used, self.limit)),
                "X-RateLimit-Resource": "core"}


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(
    repos: int = 3,
    commits: int = 10_000,
    seed: int = 42,
    *,
    real_history: bool = True,
    empty: int = 1,
    token: str | None = None,
    rate_limit: int = 5000,
    faults: FaultPlan | None = None,
) -> FastAPI:
    """The stand-in over `build_histories(repos, commits, seed, real_history)` plus `empty`
    empty repositories. With `token`, only requests carrying it (Bearer or token) are served."""
    histories = build_histories(repos, commits, seed, real_history)
    empties = [f"acme/new-service-{i + 1}" for i in range(empty)]
    by_id = {REPOSITORY_ID_BASE + i: name for i, name in enumerate([*histories, *empties])}
    ids = {name: number for number, name in by_id.items()}
    plan = faults if faults is not None else FaultPlan()
    limit = _RateLimit(rate_limit)
    app = FastAPI(title="github API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.faults, app.state.histories = plan, histories
    app.state.repositories = (*histories, *empties)

    async def list_commits(request: Request, name: str) -> Response:
        headers = limit.spend()
        if token is not None and request.headers.get("authorization", "") not in (f"Bearer {token}", f"token {token}"):
            return _error(401, "Bad credentials", "https://docs.github.com/rest", headers)
        if limit.exhausted():
            return _error(403, f"API rate limit exceeded for {request.client.host if request.client else 'you'}.",
                          RATE_DOCS, headers)
        fault = plan.take()
        if fault is not None and fault.kind in _STATUS_FAULTS:
            return _status_fault(fault, limit)
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        if name in empties:
            return _error(409, "Git Repository is empty.", DOCS, headers)
        repo = histories.get(name)
        if repo is None:
            return _error(404, "Not Found", DOCS, headers)
        try:
            rows, per_page, page, last = _page(repo, request.query_params)
        except _BadRequest as exc:
            return _error(exc.status, str(exc), DOCS, headers)
        body = b"[" + b",".join(commit_objects(repo, rows)) + b"]"
        if fault is not None and fault.kind != "slow":
            body = _spoil(body, fault.kind)
        link = _link(str(request.base_url).rstrip("/"), ids[name], request.query_params, per_page, page, last)
        return Response(body, media_type=JSON_TYPE, headers={**headers, **({"Link": link} if link else {}),
                                                              "X-GitHub-Media-Type": "github.v3; format=json"})

    @app.get("/repos/{owner}/{name}/commits")
    async def commits_by_name(request: Request, owner: str, name: str) -> Response:
        return await list_commits(request, f"{owner}/{name}")

    @app.get("/repositories/{number}/commits")
    async def commits_by_id(request: Request, number: int) -> Response:
        return await list_commits(request, by_id.get(number, ""))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "repos": {name: repo.commits.num_rows for name, repo in histories.items()}
                | {name: 0 for name in empties}}

    @app.get("/_faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [fault.as_dict() for fault in plan.pending()]}

    @app.post("/_faults", status_code=201)
    async def add_fault(request: Request) -> Response:
        try:
            plan.add(Fault.from_json(orjson.loads(await request.body())))
        except (orjson.JSONDecodeError, ConfigError, TypeError) as exc:
            return JSONResponse({"message": str(exc)}, status_code=422)
        return JSONResponse({"faults": [fault.as_dict() for fault in plan.pending()]}, status_code=201)

    @app.delete("/_faults")
    async def clear_faults() -> dict[str, Any]:
        plan.clear()
        return {"faults": []}

    return app


def _error(status: int, message: str, docs: str, headers: Mapping[str, str]) -> Response:
    body = {"message": message, "documentation_url": docs, "status": str(status)}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE, headers=dict(headers))


_STATUS_FAULTS: Final = ("rate_limit", "secondary_rate_limit", "429", "500", "502", "unauthorized")


def _status_fault(fault: Fault, limit: _RateLimit) -> Response:
    now = int(time.time())
    if fault.kind == "rate_limit":
        return _error(403, "API rate limit exceeded for user ID 1 (injected fault).", RATE_DOCS,
                      limit.headers(0, now + fault.retry_after))
    headers = limit.headers(max(0, limit.limit - limit.used), limit.reset)
    if fault.kind in ("secondary_rate_limit", "429"):
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        return _error(403 if fault.kind == "secondary_rate_limit" else 429, message, RATE_DOCS,
                      {**headers, "Retry-After": str(fault.retry_after)})
    if fault.kind == "unauthorized":
        return _error(401, "Bad credentials", "https://docs.github.com/rest", headers)
    return _error(int(fault.kind), "Server Error (injected fault)", DOCS, headers)


def _page(repo: Repo, query: Mapping[str, str]) -> tuple[np.ndarray, int, int, int]:
    """(positions in the history, per_page, page, last page) of what a query asks for."""
    per_page = _int_param(query, "per_page", DEFAULT_PER_PAGE)
    page = _int_param(query, "page", 1)
    if per_page < 1 or page < 1:
        raise _BadRequest(422, "per_page and page must be positive integers")
    per_page = min(per_page, MAX_PER_PAGE)
    committed = repo.committed_at
    keep = np.ones(len(committed), dtype=bool)
    for name, compare in (("since", np.greater_equal), ("until", np.less_equal)):
        if value := query.get(name):
            keep &= compare(committed, _epoch(name, value))
    if (sha := query.get("sha")) and sha != DEFAULT_BRANCH:
        match = np.flatnonzero(repo.commits.column("sha").to_numpy(zero_copy_only=False) == sha)
        if not len(match):
            raise _BadRequest(404, f"No commit found for SHA: {sha}")
        keep[: int(match[0])] = False
    rows = np.flatnonzero(keep)
    last = max(1, math.ceil(len(rows) / per_page))
    return rows[(page - 1) * per_page : page * per_page], per_page, page, last


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(422, f"Invalid value for parameter '{name}': {raw!r}") from None


def _epoch(name: str, value: str) -> int:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _BadRequest(422, f"Invalid value for parameter '{name}': {value!r} is not an ISO 8601 time") from None
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())


def _link(base: str, repo_id: int, query: Mapping[str, str], per_page: int, page: int, last: int) -> str:
    """GitHub's page-number Link header: next and last until the last page, prev and first after the first."""
    params = {k: v for k, v in query.items() if k not in ("page", "per_page")}

    def url(number: int) -> str:
        return f"<{base}/repositories/{repo_id}/commits?{urlencode({**params, 'per_page': per_page, 'page': number})}>"

    links = []
    if page < last:
        links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
    if page > 1:
        links += [f'{url(min(page - 1, last))}; rel="prev"', f'{url(1)}; rel="first"']
    return ", ".join(links)


def _spoil(body: bytes, kind: str) -> bytes:
    """The page with a data fault applied to about one commit in ten (at least one)."""
    if kind == "malformed":
        return body[: len(body) // 2]  # a proper prefix of a JSON array never parses
    commits: list[dict[str, Any]] = orjson.loads(body)
    hit = range(0, len(commits), 10)
    if kind == "bad_sha":
        for i in hit:
            commits[i]["sha"] = commits[i]["sha"][:7]
    elif kind == "missing_message":
        for i in hit:
            commits[i]["commit"]["message"] = None
    elif kind == "bad_date":
        for i in hit:
            commits[i]["commit"]["author"]["date"] = "last tuesday"
    elif kind == "duplicate_sha":
        for i in reversed(hit):
            commits.insert(i + 1, commits[i])
    elif kind == "rename_field":
        for c in commits:
            c["commit"]["msg"] = c["commit"].pop("message")
    return orjson.dumps(commits)


def serve_forever(
    host: str, port: int, repos: int, commits: int, seed: int, fault_specs: Sequence[str] = (), *,
    real_history: bool = True, empty: int = 1, token: str | None = None, rate_limit: int = 5000,
) -> None:
    """Serve the stand-in in the foreground until interrupted (``lakebox github-api``)."""
    app = create_app(repos, commits, seed, real_history=real_history, empty=empty, token=token,
                     rate_limit=rate_limit, faults=FaultPlan.parse(fault_specs))
    standin.serve_forever(app, host, port, f"{len(app.state.repositories)} repositories, {commits} synthetic "
                                           f"commits, seed {seed}")
