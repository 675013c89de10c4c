"""Retail: store sales, promotions, stockouts and insights, filtered by region, store and dates."""

from __future__ import annotations

import altair as alt
import streamlit as st

from lakebox.dashboard import data
from lakebox.dashboard.formats import compact, exact, money, month_label
from lakebox.dashboard.layout import Kpi, full_legend, kpi_row, table
from lakebox.pipelines.retail import page_data

wh = data.configured_warehouse()
st.title("Retail")

if not data.has_rows(wh, "analytics.store_daily_performance"):
    st.info(
        "No retail data yet — run `lakebox run retail` (after `lakebox retail-generate` if there are "
        "no daily drops in the landing folder yet), then press 'Refresh data'.",
        icon=":material/info:",
    )
    st.stop()

stores = page_data.retail_stores(wh)
first_day, last_day = page_data.retail_date_bounds(wh)

with st.sidebar:
    st.subheader("Filters")
    regions = st.multiselect("Region", sorted(stores["region"].dropna().unique()), placeholder="All regions")
    pool = stores[stores["region"].isin(regions)] if regions else stores
    names = dict(zip(pool["store_id"].tolist(), pool["store_name"].tolist(), strict=True))
    picked = st.multiselect("Store", list(names), format_func=lambda s: f"{names.get(s, s)} ({s})",
                            placeholder="All stores")
    chosen_days = st.date_input("Dates", (first_day, last_day), min_value=first_day, max_value=last_day)

# While a range is being picked the widget holds one day; treat it as that day alone.
days = tuple(chosen_days) if isinstance(chosen_days, (tuple, list)) else (chosen_days,)
start, end = (days[0], days[-1]) if days else (first_day, last_day)
in_scope = pool[pool["store_id"].isin(picked)] if picked else pool
filters = page_data.RetailFilter(
    start=start,
    end=end,
    store_ids=tuple(in_scope["store_id"].tolist()) if (regions or picked) else None,
    regions=tuple(sorted(in_scope["region"].unique().tolist())) if (regions or picked) else None,
)

kpis = page_data.retail_kpis(wh, filters)
if not kpis["days"]:
    st.warning("No sales for these filters: widen the date range or choose other stores.", icon=":material/filter_alt:")
    st.stop()

stockouts = page_data.retail_stockouts(wh, filters)
promotions = page_data.retail_promotions(wh, filters)
scope = "all stores" if filters.store_ids is None else f"{int(kpis['stores'])} store(s)"
st.caption(f"{start:%d %b %Y} – {end:%d %b %Y} · {scope}")

lost_sales = float(stockouts["estimated_lost_sales"].sum())
kpi_row([
    Kpi("Total sales", money(kpis["total_sales"]), exact(kpis["total_sales"], 2)),
    Kpi("Transactions", compact(int(kpis["transactions"])), exact(int(kpis["transactions"]))),
    Kpi("Avg basket", money(kpis["avg_basket"]), "Sales per transaction."),
    Kpi("Stores", compact(int(kpis["stores"]))),
    Kpi("Lost to stockouts", money(lost_sales),
        f"{exact(lost_sales, 2)}: sales estimated lost on days a category was out of stock."),
])

st.subheader("Daily sales by region")
daily = page_data.retail_daily_sales(wh, filters)
st.altair_chart(alt.Chart(daily).mark_line().encode(
    x=alt.X("date:T", title=None, axis=alt.Axis(format="%d %b")),
    y=alt.Y("total_sales:Q", title="sales"),
    color=alt.Color("region:N", legend=full_legend()),
    tooltip=[alt.Tooltip("date:T"), "region", alt.Tooltip("total_sales:Q", format=",.2f", title="sales")],
), width="stretch")

left, right = st.columns(2)
with left:
    st.subheader("Promotion lift by category")
    if promotions.empty:
        st.info("No promotions overlap these dates and stores.")
    else:
        lift = promotions.groupby("category", as_index=False).agg(
            avg_lift_pct=("lift_pct", "mean"), promotions=("promo_id", "count")
        )
        st.altair_chart(
            alt.Chart(lift).mark_bar().encode(
                x=alt.X("avg_lift_pct:Q", title="average lift %"),
                y=alt.Y("category:N", sort="-x", title=None),
                tooltip=["category", alt.Tooltip("avg_lift_pct:Q", format=".1f"), "promotions"],
            ),
            width="stretch",
        )
with right:
    st.subheader("Estimated sales lost to stockouts")
    if stockouts.empty:
        st.info("No stockouts recorded for these stores.")
    else:
        lost = stockouts.groupby("category", as_index=False).agg(
            estimated_lost_sales=("estimated_lost_sales", "sum"), stockout_days=("stockout_days", "sum")
        )
        st.altair_chart(
            alt.Chart(lost).mark_bar(color="#d62728").encode(
                x=alt.X("estimated_lost_sales:Q", title="estimated lost sales"),
                y=alt.Y("category:N", sort="-x", title=None),
                tooltip=["category", alt.Tooltip("estimated_lost_sales:Q", format=",.2f"), "stockout_days"],
            ),
            width="stretch",
        )

left, right = st.columns(2)
with left:
    st.subheader("Category mix by month")
    mix = page_data.retail_category_mix(wh, filters)
    if mix.empty:
        st.info("No category figures for these months and regions.")
    else:
        # The mart sums whole months: a month the data only partly covers is marked as such.
        mix["month_label"] = [month_label(m.date(), first_day, last_day) for m in mix["month"]]
        months = list(dict.fromkeys(mix.sort_values("month")["month_label"]))
        st.altair_chart(
            alt.Chart(mix).mark_bar().encode(
                x=alt.X("month_label:O", title=None, sort=months, axis=alt.Axis(labelAngle=-45, labelLimit=0)),
                y=alt.Y("total_sales:Q", title="sales"),
                color=alt.Color("category:N", legend=full_legend()),
                tooltip=["category", alt.Tooltip("month_label:O", title="month"),
                         alt.Tooltip("total_sales:Q", format=",.2f")],
            ),
            width="stretch",
        )
        if any(label.endswith("(partial)") for label in months):
            st.caption(f"Data runs {first_day:%d %b %Y} – {last_day:%d %b %Y}: a month marked partial has only "
                       "the days loaded so far.")
with right:
    st.subheader("Weekend uplift by store format")
    weekend = page_data.retail_weekend(wh, filters)
    if weekend.empty:
        st.info("No weekday/weekend comparison for these stores.")
    else:
        uplift = weekend.groupby("format", as_index=False)["weekend_uplift_pct"].mean()
        st.bar_chart(uplift, x="format", y="weekend_uplift_pct", x_label="format", y_label="weekend uplift %",
                     horizontal=True)

st.subheader("Insights")
insights = page_data.retail_insights(wh, filters)
severities = st.pills("Severity", list(page_data.SEVERITY_ORDER), selection_mode="multi",
                      default=list(page_data.SEVERITY_ORDER), key="insight_severity")
shown = insights[insights["severity"].isin(severities)]
if shown.empty:
    st.info("No insights for these filters.")
else:
    table(shown, {"severity": "Severity", "store_name": "Store", "region": "Region", "insight": "Insight"},
          column_config={"Insight": st.column_config.TextColumn(width="large")})

with st.expander("Top promotions"):
    table(promotions.head(50), {
        "promo_id": "Promotion", "store_id": "Store", "category": "Category", "start_date": "From",
        "end_date": "To", "discount_pct": "Discount %", "promo_days": "Days", "avg_daily_sales_promo": "Sales a day",
        "avg_daily_sales_baseline": "Usual sales a day", "lift_pct": "Lift %"},
        column_config={"From": st.column_config.DateColumn(), "To": st.column_config.DateColumn(),
                       **{c: st.column_config.NumberColumn(format="%.1f")
                          for c in ("Discount %", "Sales a day", "Usual sales a day", "Lift %")}})
with st.expander("Stockouts by store and category"):
    table(stockouts.head(200), {
        "store_id": "Store", "store_name": "Name", "region": "Region", "category": "Category",
        "stockout_days": "Days out of stock", "estimated_lost_sales": "Est. lost sales"},
        column_config={"Est. lost sales": st.column_config.NumberColumn(format="%.2f")})
