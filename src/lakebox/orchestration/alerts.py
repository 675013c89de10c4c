"""The alert hook the scheduler's sensors call: a failed run, a failed check.

Dagster does not fail a run for a failed asset check, so a sensor has to say it. An alert
is a lakebox log line at error level (stderr and `$LAKEBOX_HOME/logs/`, shipped with the
other logs), and, with LAKEBOX_ALERT_WEBHOOK_URL set, a message through lakebox's alert
webhook (lakebox.observability.alerts), sent once per Dagster run and title.
"""

from __future__ import annotations

from typing import Any


def alert(title: str, **fields: Any) -> None:
    """Raise an alert: `title` says what happened, `fields` name the pipeline, runs and errors."""
    from lakebox.log import configure_logging, get_logger
    from lakebox.settings import Settings, redact

    settings = Settings.load()
    configure_logging(settings.logs_dir, settings.log_level)
    shown: dict[str, Any] = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
    get_logger().error(f"alert: {title}", alert=title, **shown)
    url = settings.env.get("LAKEBOX_ALERT_WEBHOOK_URL")
    if url:
        from lakebox.observability.alerts import Alert, Alerting

        alerting = Alerting(settings, url)
        first = str(shown.get("error") or "").strip().splitlines()[:1]
        text = f":red_circle: lakebox {shown.get('pipeline', '')}: {title}" + (f": {first[0]}" if first else "")
        alerting.sender.send(Alert(f"dagster:{shown.get('dagster_run_id')}:{title}", "failed", text, shown))
        alerting.flush(10.0)
