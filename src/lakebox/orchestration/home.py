"""DAGSTER_HOME under $LAKEBOX_HOME, with the dagster.yaml lakebox needs.

Telemetry and the "join the community" prompt (`nux`) off; runs queued with one run per
pipeline at a time (the `lakebox/pipeline` tag, as lakebox's own lock also enforces), and
one run at all on an embedded DuckDB warehouse (one writing process at a time; PostgreSQL
takes several); a code server given time to load the definitions on a busy machine
(DAGSTER_GRPC_TIMEOUT_SECONDS, `code_servers.local_startup_timeout`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.settings import Settings

STARTUP_TIMEOUT_S = 180
DAGSTER_YAML = """\
# written by lakebox (orchestration/home.py); rewritten on each `lakebox serve`
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: {max_runs}
    tag_concurrency_limits:
      - key: lakebox/pipeline
        value:
          applyLimitPerUniqueValue: true
        limit: 1
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
code_servers:
  local_startup_timeout: {timeout}
run_monitoring:
  enabled: true
  start_timeout_seconds: {timeout}
"""


def dagster_home(settings: Settings) -> Path:
    """$LAKEBOX_HOME/dagster with a current dagster.yaml (DAGSTER_HOME wins when set)."""
    from lakebox.warehouse.kinds import kind_of

    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = DAGSTER_YAML.format(max_runs=kind_of(settings).max_concurrent_runs, timeout=STARTUP_TIMEOUT_S)
    if not config.exists() or "written by lakebox" in config.read_text():  # a hand-written one is left alone
        config.write_text(wanted)
    return home


def init_storage(home: Path) -> None:
    """Create the instance's storage once, before several processes open it at the same time
    (each would otherwise try to create the same SQLite tables and one would fail)."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)


def dagster_environment(settings: Settings) -> dict[str, str]:
    """The environment for Dagster's processes: this home's settings, resolved, and DAGSTER_HOME."""
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(dagster_home(settings)),
        DAGSTER_GRPC_TIMEOUT_SECONDS=env.get("DAGSTER_GRPC_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT_S)),
        LAKEBOX_HOME=str(settings.home), LAKEBOX_WAREHOUSE=settings.warehouse, LAKEBOX_LAKE=settings.lake,
        LAKEBOX_LANDING=settings.landing,
    )
    return env
