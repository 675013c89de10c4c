"""Durations as people write them ("90s", "30m", "2h", "30d") and each pipeline's freshness SLA."""

from __future__ import annotations

from collections.abc import Mapping

from lakebox import core_settings as core
from lakebox.setting_kinds import parse_duration

__all__ = ["freshness_sla", "parse_duration"]


def freshness_sla(env: Mapping[str, str], pipeline: str) -> float:
    """Seconds a pipeline may go without a successful run: LAKEBOX_<PIPELINE>_SLA, else
    LAKEBOX_FRESHNESS_SLA, else a day."""
    own: float | None = core.for_pipeline("sla", pipeline).optional(env)
    return own if own is not None else core.FRESHNESS_SLA.read(env)
