"""Orders: the daily order metrics mart (analytics.daily_order_metrics)."""

from __future__ import annotations

import streamlit as st

from lakebox.dashboard import data

wh = data.configured_warehouse()
st.title("Orders")

if not data.has_rows(wh, "analytics.daily_order_metrics"):
    st.info("No order data yet — run `lakebox run orders`, then press 'Refresh data'.", icon=":material/info:")
    st.stop()

first_day, last_day = data.orders_date_bounds(wh)
with st.sidebar:
    st.subheader("Filters")
    chosen_days = st.date_input("Order dates", (first_day, last_day), min_value=first_day, max_value=last_day)
days = tuple(chosen_days) if isinstance(chosen_days, (tuple, list)) else (chosen_days,)
start, end = (days[0], days[-1]) if days else (first_day, last_day)

daily = data.orders_daily(wh, start, end)
if daily.empty:
    st.warning("No orders on these dates: widen the date range.", icon=":material/filter_alt:")
    st.stop()

orders = int(daily["total_orders"].sum())
revenue = float(daily["total_amount"].sum())
cancelled = int(daily["cancelled_orders"].sum())
st.caption(f"{start:%d %b %Y} – {end:%d %b %Y} · {len(daily)} day(s) with orders · "
           f"last ingested {daily['_last_ingested_at'].max():%Y-%m-%d %H:%M} UTC")

cols = st.columns(5)
cols[0].metric("Orders", f"{orders:,}")
cols[1].metric("Revenue", f"{revenue:,.2f}")
cols[2].metric("Avg order", f"{revenue / orders:,.2f}" if orders else "–")
cols[3].metric("Cancelled", f"{cancelled:,} ({cancelled / orders:.1%})" if orders else "0")
cols[4].metric("Refunded", f"{daily['refunded_amount'].sum():,.2f}")

left, right = st.columns(2)
with left:
    st.subheader("Orders per day")
    st.line_chart(daily, x="order_date", y=["total_orders", "cancelled_orders"], x_label="date", y_label="orders")
with right:
    st.subheader("Revenue per day")
    st.bar_chart(daily, x="order_date", y="total_amount", x_label="date", y_label="amount")

st.subheader("Daily metrics")
st.dataframe(
    daily.sort_values("order_date", ascending=False),
    hide_index=True,
    column_config={
        "order_date": st.column_config.DateColumn("date"),
        "total_amount": st.column_config.NumberColumn(format="%.2f"),
        "avg_amount": st.column_config.NumberColumn(format="%.2f"),
        "refunded_amount": st.column_config.NumberColumn(format="%.2f"),
    },
)
