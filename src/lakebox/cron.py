"""Is a schedule a cron expression Dagster will run? Checked when settings load, so a bad
`LAKEBOX_<PIPELINE>_SCHEDULE` is refused in one line, not as a traceback when `lakebox serve`
builds its schedules. Follows the croniter Dagster vendors (`is_valid_cron_string`) without
importing dagster: five fields (minute hour day-of-month month day-of-week), each `*`, a
number, a name (JAN-DEC, SUN-SAT), a range `a-b`, a step `*/n`, `a/n`, `a-b/n`, or a list of
these; `?` for either day field; `L` (last day of the month); `DOW#n` and `Ln` (nth or last
weekday of the month); and @hourly, @daily, @midnight, @weekly, @monthly, @yearly,
@annually. Hashed and random fields (`H`, `R`) are refused: a schedule must be fixed."""

from __future__ import annotations

import re

ALIASES = {"@midnight": "0 0 * * *", "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
FIELDS = ("minute", "hour", "day of month", "month", "day of week")
RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
DAY, MONTH, WEEKDAY = 2, 3, 4
MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                      "dec"), start=1)}
WEEKDAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NAMES: tuple[dict[str, int | str], ...] = ({}, {}, {"l": "l"}, dict(MONTHS), dict(WEEKDAYS))
_INT = re.compile(r"^\d+$")
_RANGE = re.compile(r"^([^-]+)-([^-/]+)(/(\d+))?$")
_NTH = re.compile(r"^(?P<pre>((?P<he>((sun|mon|tue|wed|thu|fri|sat)(-(sun|mon|tue|wed|thu|fri|sat))?)"
                  r"|((jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(-(jan|feb|mar|apr|may|jun|jul|aug|sep|oct"
                  r"|nov|dec))?)|\w+)#)|l)(?P<last>\d+)$")
_HASHED = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$")


def cron_problem(text: str) -> str | None:
    """What makes `text` not a cron expression Dagster runs, in words; None: it is one."""
    source = ALIASES.get(text.strip().lower(), text)
    fields, shown = source.lower().split(), source.split()
    if len(fields) != 5:
        return f"not a cron expression of five fields (minute hour day-of-month month day-of-week): it has {len(fields)}"
    expanded: list[set[int | str]] = []
    nth: set[int | str] = set()
    for index, expression in enumerate(fields):
        try:
            values, nths = _field(index, expression)
        except ValueError as exc:
            return f"not a valid cron expression ({FIELDS[index]} field {shown[index]!r}: {exc})"
        expanded.append(values)
        nth |= nths
    if nth and (expanded[WEEKDAY] - nth - {"*"}) and len(expanded[WEEKDAY]) != 7:
        return "not a valid cron expression (day of week mixes plain days with nth weekdays, #n or Ln)"
    if expanded[MONTH] == {2} and len(expanded[DAY]) == 1 and expanded[DAY] <= {30, 31}:
        return "not a valid cron expression (February has no day 30 or 31)"
    return None


def _field(index: int, expression: str) -> tuple[set[int | str], set[int | str]]:
    """The values one field stands for, and those given as nth weekdays; ValueError says why not."""
    low_bound, high_bound = RANGES[index]
    if _HASHED.match(expression):
        raise ValueError("hashed or random values (H, R) are not supported; give fixed ones")
    if "?" in expression:
        if expression != "?" or index not in (DAY, WEEKDAY):
            raise ValueError("? stands alone, and only for day of month or day of week")
        expression = "*"
    values: set[int | str] = set()
    nths: set[int | str] = set()
    pending: list[int | str] = list(expression.split(","))
    while pending:
        element = str(pending.pop())
        nth: str | None = None
        if index == WEEKDAY and (special := _NTH.match(element)):
            if special["he"]:
                element, count = special["he"], int(special["last"])
                if not 1 <= count <= 5:
                    raise ValueError(f"weekday #{count} of a month does not exist (1 to 5)")
                nth = str(count)
            else:
                element, nth = special["last"], "l"
        text = re.sub(r"^\*(/.+)$", rf"{low_bound}-{high_bound}\1", element)
        match = _RANGE.search(text)
        if not match:
            text = re.sub(r"^(.+)/(.+)$", rf"\1-{high_bound}/\2", element)
            match = _RANGE.search(text)
        if match:
            for item in _range(index, match.group(1), match.group(2), match.group(4)):
                pending.append(f"{item}#{nth}" if nth and nth != "l" else item)
            continue
        if text.startswith("-"):
            raise ValueError("negative numbers are not allowed")
        value: int | str = text if text == "*" or _INT.match(text) else _name(index, text)
        if value != "*" and value != "l":
            value = _alias(index, int(value))
            if not low_bound <= value <= high_bound:
                raise ValueError(f"{value} is outside {low_bound}-{high_bound}")
        values.add(value)
        if nth:
            nths.add(value)
    return values, nths


def _range(index: int, low_text: str, high_text: str, step_text: str | None) -> list[int]:
    """The values of `low-high/step`, wrapping past the end (FRI-MON) as croniter does."""
    first, last = RANGES[index]
    if index == DAY and high_text == "l":
        high_text = "31"
    low_text, high_text = (t if _INT.match(t) else str(_name(index, t)) for t in (low_text, high_text))
    if not (_INT.match(low_text) and _INT.match(high_text)):
        raise ValueError(f"range {low_text}-{high_text} is not of numbers or names")
    step = int(step_text or 1)
    if step == 0:
        raise ValueError("a step of 0 never advances")
    low, high = _alias(index, int(low_text)), _alias(index, int(high_text))
    if max(low, high) > last:
        raise ValueError(f"range {low}-{high} goes beyond {last}")
    if low > high:
        wrapped = list(range(low, last + 1, step))
        skip = 0
        if wrapped:
            whole = list(range(first, last + 1))
            skipped, position = whole[::-1].index(wrapped[-1]), whole.index(wrapped[-1])
            if position + step > len(whole) and skipped < step:
                skip = step - skipped
        return wrapped + list(range(first + skip, high + 1, step))
    if low == high:
        return list(range(first, last + 1, step))
    return list(range(low, high + 1, step))


def _name(index: int, text: str) -> int | str:
    try:
        return _NAMES[index][text]
    except KeyError:
        allowed = {MONTH: " (numbers or JAN-DEC)", WEEKDAY: " (numbers or SUN-SAT)", DAY: " (numbers or L)"}
        raise ValueError(f"{text!r} is not a number{allowed.get(index, '')}") from None


def _alias(index: int, value: int) -> int:
    """Day of week 7 is Sunday, 0."""
    return 0 if index == WEEKDAY and value == 7 else value
