"""Durations as people write them ("90s", "30m", "2h", "30d") and each pipeline's freshness SLA."""

from __future__ import annotations

import re
from collections.abc import Mapping

from lakebox.errors import ConfigError

DEFAULT_SLA_S = 86_400.0  # a pipeline whose marts are a day old is stale unless told otherwise
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.I)


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in `text`: a number of seconds, or a number with s, m, h, d or w."""
    match = _DURATION.match(text or "")
    if not match:
        raise ConfigError(f"{what}: {text!r} is not a duration; write e.g. 3600, 90s, 30m, 2h or 30d")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def freshness_sla(env: Mapping[str, str], pipeline: str) -> float:
    """Seconds a pipeline may go without a successful run: LAKEBOX_<PIPELINE>_SLA, else
    LAKEBOX_FRESHNESS_SLA, else a day."""
    name = f"LAKEBOX_{pipeline.upper()}_SLA"
    if env.get(name):
        return parse_duration(env[name], name)
    if env.get("LAKEBOX_FRESHNESS_SLA"):
        return parse_duration(env["LAKEBOX_FRESHNESS_SLA"], "LAKEBOX_FRESHNESS_SLA")
    return DEFAULT_SLA_S
