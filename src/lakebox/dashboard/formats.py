"""How the dashboard writes numbers, p-values and column names for people to read.

Pure functions (no Streamlit), so they are unit-tested on their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

_SCALES = ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T"))
COMPACT_FROM = 10_000  # below this a number is written out whole: it fits in a KPI box


def _missing(value: float | None) -> bool:
    return value is None or bool(pd.isna(value))


def compact(value: float | None, decimals: int = 0) -> str:
    """`385.4 M`, `59.0 k`, `7,750`: short enough for a KPI box at any width; "–" when missing."""
    if value is None or _missing(value):
        return "–"
    if abs(value) < COMPACT_FROM:
        return f"{value:,.{decimals}f}"
    for scale, suffix in _SCALES:
        if round(abs(value) / scale, 1) < 1000 or suffix == "T":
            break
    return f"{value / scale:,.1f} {suffix}"


def money(value: float | None) -> str:
    """Amounts: cents below 1,000 (`10.58`), whole units below 10,000 (`7,750`), then compact."""
    if value is not None and not _missing(value) and abs(value) < 1000:
        return f"{value:,.2f}"
    return compact(value)


def exact(value: float | None, decimals: int = 0) -> str:
    """The full figure, for a KPI's tooltip when its value is compact."""
    return "missing" if value is None or _missing(value) else f"{value:,.{decimals}f}"


def p_value(value: float | None) -> str:
    """3 significant digits (`0.0457`, `1.23e-12`); blank when the test gives none (PSI)."""
    if value is None or _missing(value):
        return ""
    mantissa, _, exponent = f"{value:.3g}".partition("e")
    return mantissa + (f"e{int(exponent)}" if exponent else "")


def month_label(month: dt.date, first_day: dt.date, last_day: dt.date) -> str:
    """`Feb 2026`, or `Feb 2026 (partial)` when the data starts after its first day or ends
    before its last."""
    start = month.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    partial = first_day > start or last_day < end
    return f"{start:%b %Y}" + (" (partial)" if partial else "")


def readable(df: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """The columns named in `names`, in that order, under the names people read."""
    return df[list(names)].rename(columns=dict(names))


_ACRONYMS = {"id": "ID", "url": "URL", "utc": "UTC", "api": "API", "ml": "ML"}


def human(column: str) -> str:
    """A column name as people read it: `order_date` -> `Order date`, `store_id` -> `Store ID`."""
    words = [_ACRONYMS.get(w, w) for w in column.strip("_").split("_") if w] or [column]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def human_names(columns: list[str]) -> dict[str, str]:
    """Each column's human name, for `readable`; a column whose human name another already has
    keeps its own, so no two columns show under one name."""
    names: dict[str, str] = {}
    for column in columns:
        shown = human(column)
        names[column] = column if shown in names.values() else shown
    return names
