"""The bundled stand-in GitHub API, served in-process: what `lakebox demo` fetches from,
so the pipeline runs offline whatever repositories are configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lakebox.pipelines.spec import DemoInput

if TYPE_CHECKING:
    from lakebox.settings import Settings


@contextmanager
def bundled_api(settings: Settings) -> Iterator[DemoInput]:
    """The stand-in on a free loopback port for as long as the block runs; its URL and its
    repositories are the pipeline's api_url and repos meanwhile."""
    from lakebox.pipelines.github_commits.source import DEMO_SEED, stand_in

    with stand_in(settings.pipeline("github_commits")) as (url, repos):
        commits = settings.pipeline("github_commits").integer("demo_commits")
        note = (f"bundled GitHub stand-in on {url} ({len(repos)} repositories: commitlint's real history and "
                f"{commits:,} synthetic commits, seed {DEMO_SEED})")
        yield DemoInput({"api_url": url, "repos": ",".join(repos)}, note)
