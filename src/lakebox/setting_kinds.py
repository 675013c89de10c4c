"""What a setting may hold. Each kind parses the text of an environment variable or a
lakebox.toml value and says in words what it allows, so that a bad value is refused when
settings load, in one message naming the setting and the values it takes, instead of as a
bare ValueError (or worse, silently) deep inside a run."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

from lakebox.cron import cron_problem
from lakebox.errors import ConfigError

T = TypeVar("T")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.I)


class Kind(Generic[T]):
    """How a setting's text becomes its value; `parse` raises ValueError saying why not."""

    @property
    def allowed(self) -> str:
        raise NotImplementedError

    def parse(self, text: str) -> T:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Kind[str]):
    """Any text; `what` says what it is for (a folder or URL, a host name)."""

    what: str = "any text"

    @property
    def allowed(self) -> str:
        return self.what

    def parse(self, text: str) -> str:
        return text


@dataclass(frozen=True)
class Whole(Kind[int]):
    low: int | None = None
    high: int | None = None

    @property
    def allowed(self) -> str:
        return "a whole number" + _range(self.low, self.high)

    def parse(self, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("not a whole number") from None
        _check_range(value, self.low, self.high)
        return value


@dataclass(frozen=True)
class Number(Kind[float]):
    """A number; `above` is an exclusive lower bound (a timeout of 0 waits for nothing)."""

    low: float | None = None
    above: float | None = None

    @property
    def allowed(self) -> str:
        return "a number" + (f" > {self.above:g}" if self.above is not None else _range(self.low, None))

    def parse(self, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("not a number") from None
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        if self.above is not None and value <= self.above:
            raise ValueError("out of range")
        _check_range(value, self.low, None)
        return value


@dataclass(frozen=True)
class Duration(Kind[float]):
    """Seconds, as people write them: 3600, 90s, 30m, 2h, 30d, 1w."""

    @property
    def allowed(self) -> str:
        return "a duration > 0: seconds, or a number with s, m, h, d or w (90s, 30m, 2h, 30d)"

    def parse(self, text: str) -> float:
        seconds = _seconds(text)
        if seconds <= 0:
            raise ValueError("out of range")
        return seconds


@dataclass(frozen=True)
class Choice(Kind[str]):
    """One of `values`, in any case; the value is the one as declared."""

    values: tuple[str, ...]

    @property
    def allowed(self) -> str:
        return "one of " + ", ".join(self.values)

    def parse(self, text: str) -> str:
        for value in self.values:
            if text.strip().lower() == value.lower():
                return value
        raise ValueError("not allowed")


@dataclass(frozen=True)
class Url(Kind[str]):
    """A URL with one of `schemes` (none given: any scheme)."""

    schemes: tuple[str, ...] = ("http", "https")

    @property
    def allowed(self) -> str:
        if not self.schemes:
            return "a URL, scheme://..."
        return "a URL starting " + " or ".join(f"{s}://" for s in self.schemes)

    def parse(self, text: str) -> str:
        scheme, sep, _ = text.strip().partition("://")
        if not sep or not scheme or (self.schemes and scheme.lower() not in self.schemes):
            raise ValueError("not an allowed URL")
        return text.strip()


@dataclass(frozen=True)
class Location(Kind[str]):
    """A folder, or a URL with one of `schemes` naming its bucket (s3://bucket/prefix)."""

    schemes: tuple[str, ...] = ("s3", "s3a")

    @property
    def allowed(self) -> str:
        return "a folder, or " + " or ".join(f"{s}://bucket/prefix" for s in self.schemes)

    def parse(self, text: str) -> str:
        scheme, sep, rest = text.strip().partition("://")
        if sep:
            if scheme.lower() not in self.schemes:
                raise ValueError(f"a URL of an unsupported scheme {scheme!r}")
            if not rest.split("/", 1)[0]:
                raise ValueError("a URL without a bucket")
        elif not text.strip():
            raise ValueError("empty")
        return text.strip()


@dataclass(frozen=True)
class Items(Kind[tuple[str, ...]]):
    """A comma-separated list of `items` (plural, e.g. "GitHub repositories"), each matching
    `pattern`; `rule` says in words what one looks like."""

    pattern: str
    items: str
    rule: str

    @property
    def allowed(self) -> str:
        return f"{self.items} ({self.rule}), separated by commas"

    def parse(self, text: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        bad = [item for item in items if not re.fullmatch(self.pattern, item)]
        if bad:
            raise ValueError(f"not a list of {self.items} ({', '.join(map(repr, bad))} "
                             f"{'is not one' if len(bad) == 1 else 'are not'})")
        return items


@dataclass(frozen=True)
class Cron(Kind[str]):
    """A schedule as Dagster reads it (lakebox.cron), or off."""

    @property
    def allowed(self) -> str:
        return ("a cron expression of five fields, minute hour day-of-month month day-of-week (e.g. '0 * * * *', "
                "'*/15 6-18 * * MON-FRI'), @hourly, @daily, @weekly, @monthly, @yearly, or off")

    def parse(self, text: str) -> str:
        if text.strip().lower() != "off" and (problem := cron_problem(text)):
            raise ValueError(problem)
        return text.strip()


@dataclass(frozen=True)
class Day(Kind[str]):
    @property
    def allowed(self) -> str:
        return "a date, YYYY-MM-DD"

    def parse(self, text: str) -> str:
        try:
            dt.date.fromisoformat(text.strip())
        except ValueError:
            raise ValueError("not a date") from None
        return text.strip()


@dataclass(frozen=True)
class Instant(Kind[str]):
    @property
    def allowed(self) -> str:
        return "an ISO-8601 date or time, e.g. 2024-01-01 or 2024-01-01T00:00:00Z"

    def parse(self, text: str) -> str:
        try:
            dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError("not an ISO-8601 date or time") from None
        return text.strip()


@dataclass(frozen=True)
class Pairs(Kind[dict[str, str]]):
    """`key=value key=value` (e.g. extra Spark settings)."""

    @property
    def allowed(self) -> str:
        return "key=value pairs separated by spaces"

    def parse(self, text: str) -> dict[str, str]:
        pairs = [item.partition("=") for item in text.split()]
        bad = [key for key, sep, value in pairs if not (key and sep and value)]
        if bad:
            raise ValueError(f"not key=value pairs ({bad[0]!r})")
        return {key: value for key, _, value in pairs}


TEXT = Text()


@dataclass(frozen=True)
class Declared(Generic[T]):
    """One setting, declared once: its environment variable, kind, default and meaning.

    `key` is its name in lakebox.toml: "" for the variable in lower case without LAKEBOX_,
    None when it comes only from the environment. A secret is also environment-only and its
    value is never shown."""

    name: str
    kind: Kind[T]
    default: str | None
    doc: str
    key: str | None = ""
    secret: bool = False

    @property
    def toml_key(self) -> str | None:
        if self.secret or self.key is None:
            return None
        return self.key or self.name.removeprefix("LAKEBOX_").lower()

    def problem(self, text: str, origin: str = "") -> str | None:
        """What is wrong with `text` for this setting, naming it, where the value came from
        (env, default, or the settings file) and what it allows; None: nothing."""
        try:
            self.kind.parse(text)
        except ValueError as exc:
            shown = "(secret value)" if self.secret else repr(text)
            return f"{self.name}={shown}{self.from_where(origin)} is {exc}; allowed: {self.kind.allowed}"
        return None

    def from_where(self, origin: str) -> str:
        """' (from env)', ' (from lakebox.toml, key home)', or '' when the origin is unknown."""
        if origin and origin not in ("env", "default"):
            origin = f"{origin}, key {self.toml_key}"
        return f" (from {origin})" if origin else ""

    def optional(self, env: Mapping[str, str]) -> T | None:
        """The value in `env` (Settings.env: the environment over lakebox.toml), else the
        default; None when neither is set."""
        text = env.get(self.name) or self.default
        if text is None:
            return None
        problem = self.problem(text)
        if problem:
            raise ConfigError(problem)
        return self.kind.parse(text)

    def read(self, env: Mapping[str, str]) -> T:
        """As `optional`, for a setting that has a default."""
        value = self.optional(env)
        if value is None:
            raise ConfigError(f"{self.name} is not set; allowed: {self.kind.allowed}")
        return value

    def named(self, name: str, key: str | None = "") -> Declared[T]:
        return replace(self, name=name, key=key)


def folder_problem(declared: Declared[str], folder: Path, origin: str) -> str | None:
    """What stops lakebox from writing in `folder` (the home: logs, locks, the default
    warehouse and lake), naming the setting and where it came from; None: nothing."""
    name, where = declared.name, declared.from_where(origin)
    if folder.exists() and not folder.is_dir():
        return f"{name}='{folder}'{where} is a file, not a folder; allowed: a folder lakebox can write in"
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return (f"{name}='{folder}'{where} cannot be created: {existing} is a file; "
                "allowed: a folder lakebox can write in")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        what = "is" if existing == folder else f"cannot be created: {existing} is"
        return f"{name}='{folder}'{where} {what} not writable; allowed: a folder lakebox can write in"
    return None


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in `text`: a number of seconds, or a number with s, m, h, d or w."""
    try:
        return _seconds(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a duration; write e.g. 3600, 90s, 30m, 2h or 30d") from None


def _seconds(text: str) -> float:
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError("not a duration")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" >= {low:g}"
    return f" <= {high:g}" if high is not None else ""


def _check_range(value: float, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError("out of range")
