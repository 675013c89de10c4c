"""Each kind of setting, fed good and bad text: the value it gives, or why it refuses."""

import re
from typing import Any

import pytest

from lakebox.errors import ConfigError
from lakebox.setting_kinds import (
    Choice,
    Cron,
    Day,
    Declared,
    Duration,
    Instant,
    Items,
    Kind,
    Location,
    Number,
    Pairs,
    Url,
    Whole,
)


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
    (Cron(), "@daily", "@daily"),
    (Cron(), "*/15 6-18 * JAN-MAR,oct MON-FRI", "*/15 6-18 * JAN-MAR,oct MON-FRI"),
    (Cron(), "0 0 L * *", "0 0 L * *"),
    (Cron(), "0 9 * * MON#2", "0 9 * * MON#2"),
    (Location(), "s3://bucket/lake", "s3://bucket/lake"),
    (Location(), "relative/folder", "relative/folder"),
    (Items("[a-z]+/[a-z]+", "repositories", "owner/name"), " a/b, c/d ,", ("a/b", "c/d")),
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
    (Cron(), "hourly", "not a cron expression of five fields (minute hour day-of-month month day-of-week): it has 1"),
    (Cron(), "0 9 * * MON#2,FRI", "not a valid cron expression (day of week mixes plain days with nth weekdays, #n or Ln)"),
    (Cron(), "H * * * *", "not a valid cron expression (minute field 'H': hashed or random values (H, R) are not "
                          "supported; give fixed ones)"),
    (Location(), "s3://", "a URL without a bucket"),
    (Location(), "gs://b/x", "a URL of an unsupported scheme 'gs'"),
    (Items("[a-z]+/[a-z]+", "repositories", "owner/name"), "a/b, c", "not a list of repositories ('c' is not one)"),
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


# Schedules Dagster is known to take or refuse, and 3,000 random ones made of the pieces where
# cron goes wrong (bounds, names, steps of 0, L, ?, nth weekdays, February 30).
CRON_CASES = [
    "0 * * * *", "61 * * * *", "a b c d e", "*/0 * * * *", "@daily", "@HOURLY", "@weekly", "@monthly", "@yearly",
    "@annually", "@midnight", "@reboot", "0 0 30 2 *", "0 0 29 2 *", "0 0 L * *", "0 0 15-L * *", "0 0 * * MON#2",
    "0 0 * * 1#6", "0 0 * * L5", "0 0 * * mon#2,fri", "0 0 ? * *", "0 ? * * *", "0 0 * * 7", "0 0 * * 8",
    "0 0 * * FRI-MON", "0 0 * NOV-FEB *", "0 0 0 * *", "0 0 * 0 *", "0 0 0-5 * *", "5/15 * * * *", "1-5/a * * * *",
    "-5 * * * *", "1,,2 * * * *", "0 0 * * * *", "0 0 * *", "", "0 24 * * *", "*/60 * * * *", "10-5/3 * * * *",
    "0 0 * apr-jan/3 *", "0 0 * * mon-wed#2", "0 0 5-5/0 * *", "0 0 7-3/0 * *", "0 0 * * 1-5-6", "0\t0 * * *",
]
_PIECES = ["*", "0", "5", "59", "60", "*/5", "1-5", "5-1", "L", "?", "jan", "mon", "2#2", "l3", "1,2", "*/0", "3/2",
           "x", "7", "13", "31", "30", "2"]


def test_schedules_are_judged_as_dagster_judges_them() -> None:
    import random

    schedules = pytest.importorskip("dagster._utils.schedules")

    def dagster_takes(expression: str) -> bool:
        try:
            return bool(schedules.is_valid_cron_string(expression))
        except ValueError:  # croniter raises a bare ValueError for some steps of 0
            return False

    pick = random.Random(23)
    cases = CRON_CASES + [" ".join(pick.choice(_PIECES) for _ in range(5)) for _ in range(3000)]
    disagree = [c for c in cases if dagster_takes(c) != (c.strip().lower() == "off" or _cron_ok(c))]
    assert not disagree, f"lakebox and Dagster disagree on {len(disagree)} schedule(s), e.g. {disagree[:5]}"


def _cron_ok(expression: str) -> bool:
    try:
        Cron().parse(expression)
    except ValueError:
        return False
    return True
