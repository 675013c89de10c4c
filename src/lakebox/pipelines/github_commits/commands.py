"""The pipeline's CLI command, for the CLI to register: `lakebox github-api`."""

from __future__ import annotations

from typing import Annotated

import typer


def github_api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8001,
    repos: Annotated[int, typer.Option(help="how many synthetic repositories")] = 3,
    commits: Annotated[int, typer.Option(help="synthetic commits, shared among them")] = 10_000,
    seed: Annotated[int, typer.Option(help="seed: same seed, same histories")] = 42,
    real_history: Annotated[bool, typer.Option(help="also serve commitlint's real history")] = True,
    empty: Annotated[int, typer.Option(help="empty repositories (answer 409)")] = 1,
    rate_limit: Annotated[int, typer.Option(help="requests per hour before 403")] = 5000,
    fault: Annotated[list[str] | None, typer.Option(
        help="inject a fault, e.g. rate_limit:1:retry_after=2, secondary_rate_limit, 500:2, bad_sha")] = None,
) -> None:
    """Serve a stand-in GitHub list-commits API (GET /repos/{owner}/{repo}/commits) offline.

    A token is required when LAKEBOX_GITHUB_API_TOKEN_REQUIRED is set: requests must then
    carry that value as a bearer token."""
    import os

    from lakebox.errors import LakeboxError
    from lakebox.pipelines.github_commits.api import serve_forever

    try:
        serve_forever(host, port, repos, commits, seed, fault or [], real_history=real_history, empty=empty,
                      token=os.environ.get("LAKEBOX_GITHUB_API_TOKEN_REQUIRED") or None, rate_limit=rate_limit)
    except LakeboxError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(getattr(exc, "exit_code", 1)) from None
