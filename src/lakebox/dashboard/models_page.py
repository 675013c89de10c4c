"""Models: one page, a model picker; for the model chosen, who held its aliases when (a
timeline of ml.model_decisions), how its live answers compare with the holdout figure it
was registered with (ml.model_performance, once labels arrive), how often the challenger
shadowing it agrees, and how requests were split when a canary ran."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from lakebox.dashboard import data
from lakebox.dashboard import models_page_data as page_data
from lakebox.dashboard.formats import compact, exact
from lakebox.dashboard.layout import Kpi, full_legend, kpi_row, table

DECISIONS = {"decided_at": "When", "version": "Version", "from_version": "Replacing", "decision": "Decision",
             "decided_by": "By", "metric": "Metric", "value": "Holdout value", "reason": "Why"}
SHADOW = {"day": "Day", "champion": "Champion", "challenger": "Challenger", "rows": "Rows both answered",
          "agree": "Same answer", "agreement": "Agreement"}
# where each decision sits on the timeline, top to bottom, and its colour
LANES = ["champion", "challenger", "rejected", "skipped", "forgotten"]
COLOURS = ["#2e7d32", "#ef6c00", "#c62828", "#9e9e9e", "#616161"]
DAY = alt.X("yearmonthdate(day):O", title=None, axis=alt.Axis(labelAngle=0, format="%b %d"))

wh = data.configured_warehouse()
st.title("Models")

names = page_data.models(wh)
if not names:
    st.info("No model decisions yet — train one (`lakebox ml train PIPELINE`, or `lakebox run`), then press "
            "'Refresh data'.", icon=":material/info:")
    st.stop()

model = st.selectbox("Model", names, key="ml_page_model")
decisions = page_data.decisions(wh, model)
champions = decisions[decisions["decision"] == "champion"]
current = str(champions["version"].iloc[-1]) if not champions.empty else None
registered = page_data.holdout(wh, model, current) if current else None
shadow = page_data.shadow(wh, model)
split = page_data.canary(wh, model)
live = page_data.performance(wh, model)

both = int(shadow["rows"].sum()) if not shadow.empty else 0
agreement = float(shadow["agree"].sum()) / both if both else None
requests = int(split["requests"].sum()) if not split.empty else 0
canaried = int(split.loc[split["role"] == "canary", "requests"].sum()) if not split.empty else 0
kpi_row([
    Kpi("Champion", f"v{current}" if current else "none", "The version the `champion` alias points to, as "
        "ml.model_decisions last recorded it."),
    Kpi(f"Holdout {registered[0]}" if registered else "Holdout", f"{registered[1]:.3f}" if registered else "–",
        "The champion's figure on the newest labelled rows when it was trained."),
    Kpi("Alias moves", compact(len(decisions)), exact(len(decisions))),
    Kpi("Shadow agreement", f"{agreement:.1%}" if agreement is not None else "–",
        f"{exact(both)} rows answered by both champion and challenger."),
    Kpi("Canary share", f"{canaried / requests:.1%}" if requests else "–",
        f"{exact(canaried)} of {exact(requests)} requests answered by the challenger."),
])

st.subheader("Alias history")
if decisions.empty:
    st.info("No decisions recorded for this model yet.")
else:
    timeline = decisions.assign(version=decisions["version"].astype(str),
                                decided_by=decisions["decided_by"].fillna("rule"))
    lanes = [lane for lane in LANES if lane in set(timeline["decision"])] + sorted(
        set(timeline["decision"]) - set(LANES))
    y = alt.Y("decision:N", title=None, sort=lanes, axis=alt.Axis(labelLimit=0))
    colour = alt.Color("decision:N", legend=None, scale=alt.Scale(domain=LANES, range=COLOURS))
    tooltip = [alt.Tooltip("decided_at:T", title="when", format="%Y-%m-%d %H:%M"), "version", "decision",
               alt.Tooltip("decided_by:N", title="by"), alt.Tooltip("reason:N", title="why")]
    # the champion alias held from one champion decision to the next; the last one, still held,
    # runs a little past the newest decision (to now would squeeze a past history into a corner)
    first, last = timeline["decided_at"].min(), timeline["decided_at"].max()
    margin = max((last - first) * 0.08, pd.Timedelta(hours=12))
    held = timeline[timeline["decision"] == "champion"].assign(
        until=lambda d: d["decided_at"].shift(-1).fillna(last + margin))
    bars = alt.Chart(held).mark_bar(opacity=0.25, height=18).encode(
        x=alt.X("decided_at:T", title=None), x2="until:T", y=y, color=colour, tooltip=tooltip)
    points = alt.Chart(timeline).mark_point(filled=True, size=120, opacity=1).encode(
        x="decided_at:T", y=y, color=colour, shape=alt.Shape("decided_by:N", legend=full_legend("by")),
        tooltip=tooltip)
    labels = alt.Chart(timeline).mark_text(dy=-16, fontSize=12, fontWeight="bold").encode(
        x="decided_at:T", y=y, text=alt.Text("version:N"), tooltip=tooltip)
    st.altair_chart((bars + points + labels).properties(height=60 + 50 * len(lanes)), width="stretch")
    st.caption("Each point is one decision, the version it is about above it; the shaded bars, which version "
               "held `champion` when. A move by hand (promote, rollback) is marked by the person who made it; "
               "the champion rule's by `rule`.")
    with st.expander("Every decision"):
        table(decisions.iloc[::-1], DECISIONS, column_config={
            "When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Why": st.column_config.TextColumn(width="large")})

st.subheader("Live quality")
if live is None:
    st.info("No live labels yet: once labels arrive for served predictions, ml.model_performance holds the "
            "champion's figure per day, drawn here against its holdout figure.", icon=":material/schedule:")
else:
    day = next((c for c in ("day", "date", "scored_on", "labelled_on") if c in live.columns), None)
    value = next((c for c in ("value", registered[0] if registered else "") if c and c in live.columns), None)
    version = next((c for c in ("model_version", "version") if c in live.columns), None)
    if day and value:
        shown = live.assign(version=live[version].astype(str) if version else "")
        line = alt.Chart(shown).mark_line(point=True).encode(
            x=alt.X(f"{day}:T", title=None), y=alt.Y(f"{value}:Q", title=registered[0] if registered else value,
                                                      scale=alt.Scale(zero=False)),
            color=alt.Color("version:N", legend=full_legend("version")),
            tooltip=[alt.Tooltip(f"{day}:T", format="%Y-%m-%d"), alt.Tooltip(f"{value}:Q", format=".3f"), "version"])
        chart: alt.LayerChart | alt.Chart = line
        if registered:
            rule = alt.Chart(pd.DataFrame({"holdout": [registered[1]]})).mark_rule(strokeDash=[6, 4]).encode(
                y="holdout:Q", tooltip=[alt.Tooltip("holdout:Q", format=".3f")])
            chart = line + rule
        st.altair_chart(chart, width="stretch")
        st.caption("Dashed: the champion's holdout figure when it was registered.")
    else:
        table(live, {c: c for c in live.columns})

left, right = st.columns(2)
with left:
    st.subheader("Shadow agreement")
    if shadow.empty:
        st.info("No shadow answers yet: with a challenger registered, `lakebox ml serve` scores every request "
                "with it too, after answering, and keeps both in ml.online_predictions.", icon=":material/info:")
    else:
        daily = shadow.assign(agreement=shadow["agree"] / shadow["rows"], challenger=shadow["challenger"].astype(str))
        st.altair_chart(alt.Chart(daily).mark_line(point=True).encode(
            x=DAY, y=alt.Y("agreement:Q", title="same answer", axis=alt.Axis(format="%"),
                                                  scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("challenger:N", legend=full_legend("challenger")),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "champion", "challenger", "rows",
                     alt.Tooltip("agreement:Q", format=".1%")]), width="stretch")
        difference = page_data.shadow_difference(wh, model)
        if difference is not None:
            st.caption(f"Mean absolute difference, newest {page_data.SAMPLE_PAIRS:,} pairs: {difference:.3f}.")
with right:
    st.subheader("Canary split")
    if split.empty:
        st.info("No requests served yet. `lakebox ml canary MODEL --percent P` sends P% of them to the "
                "challenger.", icon=":material/info:")
    else:
        st.altair_chart(alt.Chart(split.assign(model_version=split["model_version"].astype(str))).mark_bar().encode(
            x=DAY, y=alt.Y("requests:Q", stack="normalize", title="share of requests",
                                                  axis=alt.Axis(format="%")),
            color=alt.Color("role:N", legend=full_legend("answered by")),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "role", "model_version", "requests"]),
            width="stretch")
        st.caption("Requests per day by who answered: `champion`, `canary` (the challenger, by `lakebox ml "
                   "canary`) or `version` (a version named in the path).")
