"""The alert hook the scheduler's sensors call: a failed run, a failed check.

Dagster does not fail a run for a failed asset check, so a sensor has to say it. The alert
is a lakebox log line at error level (stderr and `$LAKEBOX_HOME/logs/`), where log shipping
and the dashboard already look.
"""

from __future__ import annotations

from typing import Any


def alert(title: str, **fields: Any) -> None:
    """Raise an alert: `title` says what happened, `fields` name the pipeline, runs and errors."""
    from lakebox.log import configure_logging, get_logger
    from lakebox.settings import Settings, redact

    settings = Settings.load()
    configure_logging(settings.logs_dir, settings.log_level)
    shown = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
    get_logger().error(f"alert: {title}", alert=title, **shown)
