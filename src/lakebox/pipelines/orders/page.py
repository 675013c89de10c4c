"""Orders: the daily order metrics mart (analytics.daily_order_metrics)."""

from __future__ import annotations

import streamlit as st

from lakebox.dashboard import data
from lakebox.dashboard.formats import compact, exact, money
from lakebox.dashboard.layout import Kpi, kpi_row, table
from lakebox.pipelines.orders import page_data

wh = data.configured_warehouse()
st.title("Orders")

if not data.has_rows(wh, "analytics.daily_order_metrics"):
    st.info("No order data yet — run `lakebox run orders`, then press 'Refresh data'.", icon=":material/info:")
    st.stop()

first_day, last_day = page_data.orders_date_bounds(wh)
with st.sidebar:
    st.subheader("Filters")
    chosen_days = st.date_input("Order dates", (first_day, last_day), min_value=first_day, max_value=last_day)
days = tuple(chosen_days) if isinstance(chosen_days, (tuple, list)) else (chosen_days,)
start, end = (days[0], days[-1]) if days else (first_day, last_day)

daily = page_data.orders_daily(wh, start, end)
if daily.empty:
    st.warning("No orders on these dates: widen the date range.", icon=":material/filter_alt:")
    st.stop()

orders = int(daily["total_orders"].sum())
revenue = float(daily["total_amount"].sum())
cancelled = int(daily["cancelled_orders"].sum())
st.caption(f"{start:%d %b %Y} – {end:%d %b %Y} · {len(daily)} day(s) with orders · "
           f"last ingested {daily['_last_ingested_at'].max():%Y-%m-%d %H:%M} UTC")

refunded = float(daily["refunded_amount"].sum())
kpi_row([
    Kpi("Orders", compact(orders), exact(orders)),
    Kpi("Revenue", money(revenue), exact(revenue, 2)),
    Kpi("Avg order", money(revenue / orders) if orders else "–", "Revenue per order."),
    Kpi("Cancelled", compact(cancelled), exact(cancelled), f"{cancelled / orders:.1%} of orders" if orders else None),
    Kpi("Refunded", money(refunded), exact(refunded, 2)),
])

left, right = st.columns(2)
with left:
    st.subheader("Orders per day")
    st.line_chart(daily.rename(columns={"total_orders": "orders", "cancelled_orders": "cancelled"}),
                  x="order_date", y=["orders", "cancelled"], x_label="date", y_label="orders")
with right:
    st.subheader("Revenue per day")
    st.bar_chart(daily, x="order_date", y="total_amount", x_label="date", y_label="amount")

st.subheader("Daily metrics")
table(
    daily.sort_values("order_date", ascending=False), {
        "order_date": "Date", "total_orders": "Orders", "total_amount": "Revenue", "avg_amount": "Avg order",
        "unique_customers": "Customers", "cancelled_orders": "Cancelled", "refunded_amount": "Refunded"},
    column_config={
        "Date": st.column_config.DateColumn(),
        "Revenue": st.column_config.NumberColumn(format="%.2f"),
        "Avg order": st.column_config.NumberColumn(format="%.2f"),
        "Refunded": st.column_config.NumberColumn(format="%.2f"),
    },
)
