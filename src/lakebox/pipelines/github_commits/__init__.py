"""github_commits: GitHub's list-commits API (offline: a bundled stand-in) → raw lake →
raw.github_commits → stg_commits → commit activity, type trends and ml.commit_features.
See docs/github_commits.md."""

from __future__ import annotations

from lakebox.pipelines.github_commits.contract import REPO_PATTERN
from lakebox.pipelines.spec import TRANSFORM, Command, DashboardPage, PipelineSpec, Setting, StageSpec
from lakebox.setting_kinds import Instant, Items, Number, Url, Whole

SPEC = PipelineSpec(
    name="github_commits",
    description="GitHub commits: activity and commit-type marts, the commit classifier's features",
    stages=(
        StageSpec("fetch", ".fetch:fetch"),
        StageSpec("load", ".pipeline:load"),
        TRANSFORM,
        # the champion as it stood at the run's start scores new commits, then training (when
        # due) may promote a new one, then the newest window is checked for drift
        StageSpec("predict", ".ml:predict"),
        StageSpec("train", ".ml:train"),
        StageSpec("drift", ".ml:drift"),
    ),
    settings=(
        Setting("repos", None, "comma-separated owner/name repositories; unset: the bundled stand-in's "
                "repositories, offline", env="LAKEBOX_GITHUB_REPOS",
                kind=Items(REPO_PATTERN, "GitHub repositories", "owner/name, e.g. conventional-changelog/commitlint")),
        Setting("token", None, "GitHub token, sent as a bearer token (environment only, never logged)",
                env="LAKEBOX_GITHUB_TOKEN", secret=True),
        Setting("api_url", "https://api.github.com", "API base URL (GitHub Enterprise: https://HOST/api/v3)",
                env="LAKEBOX_GITHUB_API_URL", kind=Url()),
        Setting("since", None, "ISO-8601 start of each repository's first fetch (default: the whole history)",
                env="LAKEBOX_GITHUB_SINCE", kind=Instant()),
        Setting("overlap_hours", "72", "hours re-read before the newest committer date seen (late pushes)",
                env="LAKEBOX_GITHUB_OVERLAP_HOURS", kind=Number(low=0)),
        Setting("demo_commits", "2000", "synthetic commits the bundled stand-in serves in three repositories, "
                "besides commitlint's real 3,466", env="LAKEBOX_DEMO_GITHUB_COMMITS", kind=Whole(0)),
    ),
    dbt_selector="path:models/github_commits",
    marts=("analytics.commit_activity", "analytics.commit_type_trends", "ml.commit_features"),
    sources=("github_commits",),
    dashboard_page=DashboardPage(".page", "GitHub", ":material/commit:"),
    commands=(Command("github-api", ".commands:github_api"),),
    demo_feed=".demo:bundled_api",
    waiting_input=None,  # polled: `lakebox watch` runs it every --every seconds
    ml_models=(".classifier:SPEC",),
    bench=".bench:SCENARIO",
)
