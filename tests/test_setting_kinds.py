"""Each kind of setting, fed good and bad text: the value it gives, or why it refuses."""

import re
from typing import Any

import pytest

from lakebox.errors import ConfigError
from lakebox.setting_kinds import Choice, Cron, Day, Declared, Duration, Instant, Kind, Number, Pairs, Url, Whole


@pytest.mark.parametrize(("kind", "text", "value"), [
    (Whole(1), " 7 ", 7),
    (Whole(0, 65535), "65535", 65535),
    (Number(above=0), "0.25", 0.25),
    (Number(low=0), "0", 0.0),
    (Duration(), "2h", 7200.0),
    (Choice(("quarantine", "fail-fast")), "FAIL-FAST", "fail-fast"),
    (Url(), "https://h/x", "https://h/x"),
    (Url(()), "rpc://", "rpc://"),
    (Cron(), "*/15 * * * *", "*/15 * * * *"),
    (Cron(), "off", "off"),
    (Day(), "2024-02-29", "2024-02-29"),
    (Instant(), "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
    (Pairs(), "a=1 b=x=y", {"a": "1", "b": "x=y"}),
])
def test_a_good_value_parses(kind: Kind[Any], text: str, value: object) -> None:
    assert kind.parse(text) == value


@pytest.mark.parametrize(("kind", "text", "reason"), [
    (Whole(1), "0", "out of range"),
    (Whole(1), "1.5", "not a whole number"),
    (Whole(0, 65535), "65536", "out of range"),
    (Number(above=0), "0", "out of range"),
    (Number(above=0), "nan", "not a finite number"),
    (Number(low=0), "-1", "out of range"),
    (Number(low=0), "abc", "not a number"),
    (Duration(), "0", "out of range"),
    (Duration(), "soon", "not a duration"),
    (Choice(("auto", "on", "off")), "maybe", "not allowed"),
    (Url(), "ftp://h", "not an allowed URL"),
    (Url(), "h:8080", "not an allowed URL"),
    (Cron(), "hourly", "not a five-field cron expression"),
    (Day(), "2024-02-30", "not a date"),
    (Instant(), "yesterday", "not an ISO-8601 date or time"),
    (Pairs(), "a=1 b", "not key=value pairs ('b')"),
])
def test_a_bad_value_is_refused_saying_why(kind: Kind[Any], text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        kind.parse(text)


def test_a_declared_setting_reads_its_default_or_names_itself_when_bad() -> None:
    attempts = Declared("LAKEBOX_X_ATTEMPTS", Whole(1), "3", "attempts")
    assert attempts.read({}) == 3 and attempts.read({"LAKEBOX_X_ATTEMPTS": ""}) == 3, "empty: the default"
    assert attempts.read({"LAKEBOX_X_ATTEMPTS": "5"}) == 5
    with pytest.raises(ConfigError, match=r"^LAKEBOX_X_ATTEMPTS='0' is out of range; allowed: a whole number >= 1$"):
        attempts.read({"LAKEBOX_X_ATTEMPTS": "0"})
    assert Declared("LAKEBOX_X_URL", Url(), None, "u").optional({}) is None
    token = Declared("LAKEBOX_X_TOKEN", Url(), None, "t", secret=True)
    assert token.toml_key is None
    assert token.problem("tok-123", "env") == "LAKEBOX_X_TOKEN=(secret value) (from env) is not an allowed URL; " \
                                              "allowed: a URL starting http:// or https://"
