"""The pipeline's own command, `lakebox github-api`; registered from its spec."""

from __future__ import annotations

from typing import Annotated

import typer


def github_api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8001,
    repos: Annotated[int, typer.Option(min=1, help="how many synthetic repositories")] = 3,
    commits: Annotated[int, typer.Option(min=0, help="synthetic commits, shared among them")] = 10_000,
    seed: Annotated[int, typer.Option(help="seed: same seed, same histories")] = 42,
    real_history: Annotated[bool, typer.Option(help="also serve commitlint's real history")] = True,
    empty: Annotated[int, typer.Option(min=0, help="empty repositories (answer 409)")] = 1,
    rate_limit: Annotated[int, typer.Option(min=1, help="requests per hour before 403")] = 5000,
    require_token: Annotated[bool, typer.Option(
        help="answer 401 to requests without the bearer token in LAKEBOX_GITHUB_TOKEN")] = False,
    fault: Annotated[list[str] | None, typer.Option(
        help="inject a fault, e.g. rate_limit:1:retry_after=2, secondary_rate_limit, 500:2, bad_sha")] = None,
) -> None:
    """Serve a stand-in GitHub list-commits API (GET /repos/{owner}/{repo}/commits), offline."""
    import os

    from lakebox.errors import ConfigError
    from lakebox.pipelines.github_commits.api import serve_forever
    from lakebox.pipelines.github_commits.source import TOKEN_ENV

    token = os.environ.get(TOKEN_ENV) if require_token else None
    if require_token and not token:
        raise ConfigError(f"--require-token: set {TOKEN_ENV} to the token requests must carry")
    serve_forever(host, port, repos, commits, seed, fault or [], real_history=real_history, empty=empty,
                  token=token, rate_limit=rate_limit)
