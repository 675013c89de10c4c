"""A warehouse holding `ml.commit_features` built from a real project's history (3,466
commits of conventional-changelog/commitlint), shaped as the github_commits dbt model
builds it, and an MLflow SQLite store in the test's home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakebox.settings import Settings
from lakebox.warehouse import Warehouse, open_warehouse

HISTORY = (Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "github"
           / "real_history_commitlint_commits.jsonl.gz")

# The dbt model's columns, computed with set-based SQL from the list-commits objects.
COMMIT_FEATURES_SQL = r"""
create or replace table ml.commit_features as
with raw as (
  select sha, 'conventional-changelog/commitlint' as repo, lower(commit.author.email) as author_key,
         cast(commit.committer.date as timestamp) as committed_at, commit.message as message,
         len(parents) as parent_count
  from read_json_auto('{path}')
), parsed as (
  select *, regexp_extract(message, '^([A-Za-z]+)(\([^)]*\))?!?:\s*', 1) as conventional_type,
         regexp_replace(message, '^([A-Za-z]+)(\([^)]*\))?!?:\s*', '') as body
  from raw
)
select sha, repo, author_key, committed_at,
       cast(extract(hour from committed_at) as integer) as hour,
       cast(isodow(committed_at) as integer) as weekday,
       body as message_body, cast(length(body) as integer) as message_length,
       parent_count > 1 as is_merge, cast(parent_count as integer) as parent_count,
       cast(count(*) over (partition by author_key order by committed_at, sha
                           rows between unbounded preceding and 1 preceding) as integer) as author_prior_commits,
       nullif(lower(conventional_type), '') as label
from parsed
"""


def build_commit_features(warehouse: Warehouse, path: Path = HISTORY) -> int:
    warehouse.execute(COMMIT_FEATURES_SQL.replace("{path}", str(path)))
    return warehouse.query("select count(*) from ml.commit_features")[0][0]


@pytest.fixture
def history() -> Path:
    if not HISTORY.is_file():
        pytest.skip(f"the recorded commit history is not at {HISTORY} (the shared fixtures folder)")
    return HISTORY


@pytest.fixture
def settings(lakebox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("MLFLOW_TRACKING_URI", "LAKEBOX_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    return Settings.load()


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    with open_warehouse(settings) as wh:
        yield wh


@pytest.fixture
def commit_warehouse(warehouse: Warehouse, history: Path) -> Warehouse:
    assert build_commit_features(warehouse, history) == 3466
    return warehouse
