"""WHO life expectancy: a country's trend with its uncertainty band, the sex gap, its region,
and the champion model's prediction of its next observation beside the actual values."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from lakebox.dashboard import data
from lakebox.dashboard.layout import Kpi, kpi_row, table

BY_YEAR = "analytics.life_expectancy_by_country_year"
TRENDS = "analytics.life_expectancy_trends"
PREDICTIONS = "ml.life_expectancy_predictions"
YEAR = alt.X("year:Q", title=None, axis=alt.Axis(format="d"), scale=alt.Scale(zero=False))

wh = data.configured_warehouse()
st.title("WHO life expectancy")

if not data.has_rows(wh, BY_YEAR):
    st.info("No WHO data yet — run `lakebox run who_gho` (offline it uses the bundled GHO stand-in), "
            "then press 'Refresh data'.", icon=":material/info:")
    st.stop()

countries = data.fetch(wh, f"select country_code, max(country_name) as country_name, max(region) as region "
                           f"from {BY_YEAR} group by country_code order by max(country_name), country_code")
names = dict(zip(countries["country_code"], countries["country_name"], strict=True))
with st.sidebar:
    st.subheader("Country")
    code = st.selectbox("Country", list(names), format_func=lambda c: f"{names[c]} ({c})")

series = data.fetch(
    wh,
    "select year, cast(life_expectancy as double precision) as life_expectancy, "
    "cast(life_expectancy_low as double precision) as low, cast(life_expectancy_high as double precision) as high, "
    "cast(life_expectancy_male as double precision) as male, cast(life_expectancy_female as double precision) as female, "
    "cast(healthy_life_expectancy as double precision) as healthy_life_expectancy, region, region_name "
    f"from {BY_YEAR} where country_code = ? order by year",
    (code,),
)
trend = data.fetch(wh, f"select * from {TRENDS} where country_code = ?", (code,))
observed = series.dropna(subset=["life_expectancy"])
region = series["region"].dropna().iloc[0] if series["region"].notna().any() else None
st.caption(f"{names[code]} · {series['region_name'].dropna().iloc[0] if series['region_name'].notna().any() else '–'} · "
           f"{len(observed)} observed year(s), {int(series['year'].min())}–{int(series['year'].max())}")

latest = observed.iloc[-1] if not observed.empty else None
healthy = latest["healthy_life_expectancy"] if latest is not None else None
per_decade = trend["change_per_decade"].iloc[0] if not trend.empty else None
region_name = series["region_name"].dropna().iloc[0] if series["region_name"].notna().any() else region
if not trend.empty and region is not None:
    in_region = int(countries["region"].eq(region).sum())
    rank = Kpi(f"Rank in {region}", f"{int(trend['rank_in_region'].iloc[0])} of {in_region}",
               f"Among the {in_region} countries of WHO region {region} ({region_name}), ranked by how fast life "
               "expectancy rose per decade: 1 is the fastest gain.")
else:
    rank = Kpi("Rank in region", "–", "Ranked by how fast life expectancy rose per decade (1 = fastest gain).")
kpi_row([
    Kpi(f"Life expectancy ({int(latest['year'])})" if latest is not None else "Life expectancy",
        f"{latest['life_expectancy']:.1f} y" if latest is not None else "–",
        "At birth, both sexes, in the latest year GHO reports."),
    Kpi("Healthy life expectancy", f"{healthy:.1f} y" if healthy is not None and pd.notna(healthy) else "–",
        "Years expected in full health (HALE), latest year."),
    Kpi("Change per decade", f"{per_decade:+.2f} y" if per_decade is not None and pd.notna(per_decade) else "–",
        "The trend of life expectancy over the observed years, per ten years."),
    rank,
])
if region is not None:
    st.caption(f"{rank.label}: {rank.help}")

st.subheader("Life expectancy at birth")
sexes = series.melt(id_vars="year", value_vars=["life_expectancy", "male", "female"], var_name="series",
                    value_name="years").dropna().replace({"series": {"life_expectancy": "both sexes"}})
band = alt.Chart(series.dropna(subset=["low", "high"])).mark_area(opacity=0.2).encode(
    x=YEAR, y=alt.Y("low:Q", title="years", scale=alt.Scale(zero=False)), y2="high:Q",
    tooltip=[alt.Tooltip("year:Q", format="d"), alt.Tooltip("low:Q", format=".2f"), alt.Tooltip("high:Q", format=".2f")],
)
lines = alt.Chart(sexes).mark_line(point=True).encode(
    x=YEAR, y=alt.Y("years:Q", scale=alt.Scale(zero=False)), color=alt.Color("series:N", title=None),
    tooltip=["series", alt.Tooltip("year:Q", format="d"), alt.Tooltip("years:Q", format=".2f")],
)
st.altair_chart(band + lines, width="stretch")
st.caption("Shaded: GHO's uncertainty interval (low–high) for both sexes. Years are the ones GHO reports; "
           "some countries report every five years.")

left, right = st.columns(2)
with left:
    st.subheader("Sex gap")
    gap = series.assign(sex_gap=series["female"] - series["male"]).dropna(subset=["sex_gap"])
    if gap.empty:
        st.info("GHO has no separate values for women and men for this country.")
    else:
        st.altair_chart(alt.Chart(gap).mark_bar().encode(
            x=YEAR, y=alt.Y("sex_gap:Q", title="years women outlive men"),
            tooltip=[alt.Tooltip("year:Q", format="d"), alt.Tooltip("sex_gap:Q", format=".2f")],
        ), width="stretch")
with right:
    st.subheader("Next observation, predicted")
    if not data.has_rows(wh, PREDICTIONS):
        st.info("No predictions yet: the champion model writes each country's predicted next observation "
                f"to `{PREDICTIONS}` when the pipeline's ML stage has run.", icon=":material/model_training:")
    else:
        predicted = data.fetch(
            wh, "select year, cast(predicted as double precision) as predicted, model_version, scored_at "
                f"from {PREDICTIONS} where country_code = ? order by year, scored_at", (code,))
        if predicted.empty:
            st.info("The champion model has not scored this country yet.")
        else:
            both = pd.concat([observed[["year", "life_expectancy"]].rename(columns={"life_expectancy": "years"})
                              .assign(series="actual"),
                              predicted[["year", "predicted"]].rename(columns={"predicted": "years"})
                              .assign(series="predicted")])
            st.altair_chart(alt.Chart(both).mark_line(point=True).encode(
                x=YEAR, y=alt.Y("years:Q", scale=alt.Scale(zero=False)), color=alt.Color("series:N", title=None),
                tooltip=["series", alt.Tooltip("year:Q", format="d"), alt.Tooltip("years:Q", format=".2f")],
            ), width="stretch")
            newest = predicted.iloc[-1]
            st.caption(f"Model version {newest['model_version']}, scored {newest['scored_at']:%Y-%m-%d %H:%M} UTC.")

if region is not None:
    st.subheader(f"Trends in {region_name} ({region})")
    ranks = data.fetch(
        wh, "select rank_in_region, country_name, country_code, first_year, last_year, observations, "
            "cast(last_life_expectancy as double precision) as last_life_expectancy, "
            f"cast(change_per_decade as double precision) as change_per_decade from {TRENDS} "
            "where region = ? order by rank_in_region, country_code", (region,))
    st.caption("Ranked by the change in life expectancy per decade, fastest gain first.")
    table(ranks, {
        "rank_in_region": "Rank", "country_name": "Country", "change_per_decade": "Change per decade",
        "last_life_expectancy": "Latest (years)", "last_year": "Latest year", "observations": "Years observed",
        "first_year": "First year", "country_code": "Code"}, column_config={
        "Latest (years)": st.column_config.NumberColumn(format="%.1f"),
        "Change per decade": st.column_config.NumberColumn(format="%+.2f"),
    })
