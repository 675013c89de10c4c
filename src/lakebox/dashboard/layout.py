"""The pages' shared pieces: a row of KPIs that wraps instead of cutting values short, tables
with the column names people read and blank cells where a value is missing, and chart legends
that show every entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from lakebox.dashboard.formats import readable


@dataclass(frozen=True)
class Kpi:
    """One figure: `value` as shown (compact), `help` the exact figure or what it means."""

    label: str
    value: str
    help: str | None = None
    note: str | None = None  # a grey line under the value (e.g. "6.5% of orders")


def kpi_row(kpis: Sequence[Kpi]) -> None:
    """KPIs side by side in a wrapping row: each is at least as wide as its value, so a narrow
    page puts fewer on a line instead of ending values in "…"."""
    with st.container(horizontal=True, gap="medium"):
        for kpi in kpis:
            st.metric(kpi.label, kpi.value, delta=kpi.note, delta_color="off", delta_arrow="off", help=kpi.help,
                      width="stretch")


def table(df: pd.DataFrame, names: Mapping[str, str], column_config: Mapping[str, Any] | None = None,
          **options: Any) -> None:
    """`df`'s columns in `names` (their order, their human names), no index, missing values blank
    (Streamlit writes "None" otherwise)."""
    st.dataframe(readable(df, names), hide_index=True, placeholder="", column_config=dict(column_config or {}),
                 **options)


def full_legend(title: str | None = None) -> alt.Legend:
    """Every entry, one a line beside the chart: Vega cuts a legend laid out in a row under a
    narrow chart at the chart's edge (the commit-type legend stopped after 8 of 14)."""
    return alt.Legend(title=title, orient="right", columns=1, symbolLimit=0, labelLimit=0)


SHOWN_PAGE = "lakebox.shown_page"  # session state: the url path of the page being run (set by app.py)


def shown_page() -> str:
    """The url path of the page running now ("" outside the app): a page file several pipelines
    share (every declarative pipeline's page is lakebox.declarative.page) renders the pipeline
    it is served for, and a page's url path is its pipeline's name."""
    return str(st.session_state.get(SHOWN_PAGE, ""))
