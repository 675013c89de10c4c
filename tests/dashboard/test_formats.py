"""How the dashboard writes figures: compact KPI numbers, p-values, partial months, column names."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from lakebox.dashboard.formats import compact, exact, human, human_names, money, month_label, p_value, readable


@pytest.mark.parametrize(("value", "shown"), [
    (0, "0"), (42, "42"), (9_999, "9,999"), (10_000, "10.0 k"), (59_000, "59.0 k"), (624_000, "624.0 k"),
    (999_949, "999.9 k"), (999_960, "1.0 M"),  # never "1,000.0 k"
    (385_412_345.67, "385.4 M"), (2_500_000_000, "2.5 B"), (7.1e12, "7.1 T"), (1.5e15, "1,500.0 T"),
    (-12_345, "-12.3 k"), (None, "–"), (float("nan"), "–"), (pd.NA, "–"),
])
def test_compact_numbers_fit_a_kpi_box(value: float | None, shown: str) -> None:
    assert compact(value) == shown
    assert len(shown) <= 9


@pytest.mark.parametrize(("value", "shown"), [
    (10.576, "10.58"), (50, "50.00"), (999.994, "999.99"), (7_750, "7,750"), (385_412_345.67, "385.4 M"),
    (None, "–"),
])
def test_money_keeps_cents_only_where_they_fit(value: float | None, shown: str) -> None:
    assert money(value) == shown


def test_exact_is_the_whole_figure_for_a_tooltip() -> None:
    assert exact(385_412_345.678, 2) == "385,412,345.68"
    assert exact(None) == "missing"


@pytest.mark.parametrize(("value", "shown"), [
    (0.0456789, "0.0457"), (0.5, "0.5"), (1.0, "1"), (0.000123456, "0.000123"), (1.234567e-12, "1.23e-12"),
    (1e-5, "1e-5"), (0.0, "0"), (None, ""), (float("nan"), ""),
])
def test_p_values_have_three_significant_digits(value: float | None, shown: str) -> None:
    assert p_value(value) == shown


@pytest.mark.parametrize(("month", "first", "last", "shown"), [
    (dt.date(2026, 2, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 28), "Feb 2026"),
    (dt.date(2026, 2, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 15), "Feb 2026 (partial)"),
    (dt.date(2026, 1, 1), dt.date(2026, 1, 5), dt.date(2026, 2, 15), "Jan 2026 (partial)"),
    (dt.date(2026, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 15), "Jan 2026"),
    (dt.date(2024, 2, 1), dt.date(2024, 1, 1), dt.date(2024, 2, 29), "Feb 2024"),  # leap year
    (dt.date(2026, 12, 1), dt.date(2026, 1, 1), dt.date(2026, 12, 31), "Dec 2026"),
])
def test_a_month_the_data_only_partly_covers_is_marked(month: dt.date, first: dt.date, last: dt.date,
                                                       shown: str) -> None:
    assert month_label(month, first, last) == shown


def test_readable_picks_orders_and_renames_columns() -> None:
    df = pd.DataFrame({"_last_ingested_at": [1], "order_date": [2], "total_orders": [3]})
    shown = readable(df, {"total_orders": "Orders", "order_date": "Date"})
    assert list(shown.columns) == ["Orders", "Date"]
    assert shown.iloc[0].tolist() == [3, 2]


@pytest.mark.parametrize(("column", "shown"), [
    ("order_date", "Order date"), ("store_id", "Store ID"), ("pm25", "Pm25"), ("_last_ingested_at", "Last ingested at"),
    ("api_url", "API URL"), ("Already Human", "Already Human"), ("_", "_"),
])
def test_a_column_name_reads_as_words(column: str, shown: str) -> None:
    assert human(column) == shown


def test_two_columns_never_show_under_one_name() -> None:
    assert human_names(["store_id", "store__id", "day"]) == {"store_id": "Store ID", "store__id": "store__id",
                                                            "day": "Day"}
