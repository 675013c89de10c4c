"""GitHub commits: activity and commit types from the marts, and the commit classifier
(the champion's metrics, predictions against labels, drift flags) from ml.*.

The ML tables (written by `lakebox.ml` for the registry model `commit-classifier`) appear
once the ML stages have run; until then their sections say so.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from lakebox.dashboard import data
from lakebox.dashboard.formats import compact, exact, p_value
from lakebox.dashboard.layout import Kpi, full_legend, kpi_row, table
from lakebox.ml.drift import KS_ALPHA

ACTIVITY = "analytics.commit_activity"
TRENDS = "analytics.commit_type_trends"
FEATURES = "ml.commit_features"
PREDICTIONS = "ml.commit_predictions"
DECISIONS = "ml.model_decisions"
DRIFT = "ml.drift_report"
MODEL = "commit-classifier"


def repo_filter(repos: list[str], column: str = "repo") -> tuple[str, tuple[Any, ...]]:
    return f"{column} in ({', '.join('?' for _ in repos)})", tuple(repos)


wh = data.configured_warehouse()
st.title("GitHub commits")

if not data.has_rows(wh, ACTIVITY):
    st.info("No commits yet — run `lakebox run github_commits`, then press 'Refresh data'.", icon=":material/info:")
    st.stop()

all_repos = list(data.fetch(wh, f"select distinct repo from {ACTIVITY} order by repo")["repo"])
with st.sidebar:
    st.subheader("Filters")
    chosen = st.multiselect("Repositories", all_repos, default=all_repos)
repos = chosen or all_repos
where, params = repo_filter(repos)

totals = data.fetch(wh, f"""
    select sum(commits) as commits, sum(merges) as merges, sum(conventional_commits) as conventional,
           sum(breaking_changes) as breaking, count(distinct author_key) as authors,
           min(activity_date) as first_day, max(activity_date) as last_day
    from {ACTIVITY} where {where}""", params).iloc[0]
commits = int(totals["commits"] or 0)
st.caption(f"{len(repos)} repositor{'y' if len(repos) == 1 else 'ies'} · "
           f"{totals['first_day']:%d %b %Y} – {totals['last_day']:%d %b %Y}")
kpi_row([
    Kpi("Commits", compact(commits), exact(commits)),
    Kpi("Authors", compact(int(totals["authors"]))),
    Kpi("Merges", compact(int(totals["merges"]))),
    Kpi("Conventional", f"{int(totals['conventional']) / commits:.0%}" if commits else "–",
        "Share of commits whose message starts with a conventional type (`feat:`, `fix(scope):`, ...)."),
    Kpi("Breaking changes", compact(int(totals["breaking"])), "Commits marked `!` or `BREAKING CHANGE`."),
])

weekly = data.fetch(wh, f"""
    select week_start, commit_type, sum(commits) as commits
    from {TRENDS} where {where}
    group by week_start, commit_type order by week_start""", params)
st.subheader("Commits per week, by type")
types = sorted(weekly["commit_type"].unique())
st.altair_chart(alt.Chart(weekly).mark_bar().encode(
    x=alt.X("yearmonthdate(week_start):O", title="week starting", axis=alt.Axis(format="%d %b %Y", labelAngle=0)),
    y=alt.Y("sum(commits):Q", title="commits"),
    color=alt.Color("commit_type:N", scale=alt.Scale(domain=types, scheme="tableau20"), legend=full_legend("type")),
    tooltip=[alt.Tooltip("week_start:T", title="week"), alt.Tooltip("commit_type:N", title="type"),
             alt.Tooltip("sum(commits):Q", title="commits")],
), width="stretch")

st.subheader("Share of each type")
mix = weekly.groupby("commit_type", as_index=False)["commits"].sum().sort_values("commits", ascending=False)
mix["share"] = mix["commits"] / mix["commits"].sum()
table(mix, {"commit_type": "Type", "commits": "Commits", "share": "Share"}, column_config={
    "Share": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)})

st.subheader("Most active authors")
authors = data.fetch(wh, f"""
    select repo, max(author_name) as author, max(author_login) as login, sum(commits) as commits,
           sum(merges) as merges, count(*) as active_days, max(activity_date) as last_active
    from {ACTIVITY} where {where}
    group by repo, author_key order by commits desc limit 20""", params)
table(authors, {"author": "Author", "login": "Login", "repo": "Repository", "commits": "Commits", "merges": "Merges",
                "active_days": "Active days", "last_active": "Last active"},
      column_config={"Last active": st.column_config.DateColumn()})

st.header("Commit classifier")
if data.has_rows(wh, DECISIONS):
    decisions = data.fetch(wh, f"select version, decision, metric, value, champion_value, reason, decided_at "
                               f"from {DECISIONS} where model_name = ? order by decided_at desc", (MODEL,))
    champions = decisions[decisions["decision"] == "champion"]
    if not champions.empty:
        champion = champions.iloc[0]
        kpi_row([
            Kpi("Champion version", str(champion["version"])),
            Kpi(f"Champion {champion['metric']}", f"{champion['value']:.3f}",
                f"The champion's {champion['metric']} on the newest commits, held out from training."),
            Kpi("Versions decided", f"{len(decisions)}"),
        ])
    table(decisions.head(20), {
        "version": "Version", "decision": "Decision", "metric": "Metric", "value": "Score",
        "champion_value": "Champion's score", "reason": "Why", "decided_at": "Decided"},
        column_config={"Score": st.column_config.NumberColumn(format="%.3f"),
                       "Champion's score": st.column_config.NumberColumn(format="%.3f"),
                       "Why": st.column_config.TextColumn(width="large")})
else:
    st.info("No model decisions yet: the classifier trains on the first run with enough labelled commits.",
            icon=":material/model_training:")

st.subheader("Predictions against labels")
if data.has_rows(wh, PREDICTIONS) and data.has_rows(wh, FEATURES):
    where_f, params_f = repo_filter(repos, "f.repo")
    scored = data.fetch(wh, f"""
        select f.label, p.predicted_type, count(*) as commits
        from {PREDICTIONS} as p join {FEATURES} as f on f.sha = p.sha
        where f.label is not null and {where_f}
        group by f.label, p.predicted_type""", params_f)
    if scored.empty:
        st.info("No scored commit carries a label in these repositories.", icon=":material/info:")
    else:
        right_ones = int(scored.loc[scored["label"] == scored["predicted_type"], "commits"].sum())
        kpi_row([Kpi("Agreement with the conventional type", f"{right_ones / int(scored['commits'].sum()):.1%}",
                     "Share of labelled commits whose predicted type is their conventional type.")])
        classes = sorted(set(scored["label"]) | set(scored["predicted_type"]))
        cells = alt.Chart(scored).encode(
            x=alt.X("predicted_type:N", title="predicted", sort=classes, axis=alt.Axis(orient="top", labelAngle=0)),
            y=alt.Y("label:N", title="actual", sort=classes),
        )
        rects = cells.mark_rect().encode(
            color=alt.Color("commits:Q", title="commits", scale=alt.Scale(scheme="blues")),
            tooltip=[alt.Tooltip("label:N", title="actual"), alt.Tooltip("predicted_type:N", title="predicted"),
                     "commits"],
        )
        st.altair_chart(alt.layer(rects, cells.mark_text().encode(text="commits:Q"))
                        .properties(height=max(220, 48 * len(classes))), width="stretch")
        st.caption("Confusion matrix: each row is the actual type, each column the predicted one; the diagonal "
                   "is where they agree.")
    recent = data.fetch(wh, f"""
        select f.committed_at, f.repo, f.message_body, p.predicted_type, p.probability, f.label
        from {PREDICTIONS} as p join {FEATURES} as f on f.sha = p.sha
        where {where_f} order by f.committed_at desc, p.sha limit 50""", params_f)
    st.subheader("Recent predictions")
    table(recent, {
        "committed_at": "Committed", "predicted_type": "Predicted", "label": "Actual", "probability": "Confidence",
        "repo": "Repository", "message_body": "Message (without its type)"},
        column_config={"Confidence": st.column_config.NumberColumn(format="percent"),
                       "Committed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                       "Message (without its type)": st.column_config.TextColumn(width="large")})
    st.caption("The newest 50 scored commits. Actual is blank where the message has no conventional type.")
else:
    st.info("No predictions yet: commits are scored once a champion model exists.", icon=":material/info:")

st.subheader("Drift")
if data.has_rows(wh, DRIFT):
    drift = data.fetch(wh, f"""
        select feature, method, statistic, p_value, threshold, drifted, window_start, window_end, computed_at
        from {DRIFT} where model_name = ? and computed_at = (select max(computed_at) from {DRIFT} where model_name = ?)
        order by drifted desc, feature""", (MODEL, MODEL))
    flagged = drift[drift["drifted"].astype(bool)]
    newest = drift.iloc[0]
    kpi_row([Kpi("Features flagged", f"{len(flagged)} of {len(drift)}",
                 "A feature drifts when its newest window differs from the training reference beyond the threshold.")])
    if not flagged.empty:
        st.warning("Drift in the newest window: " + ", ".join(map(str, flagged["feature"])), icon=":material/warning:")
    window = (f"Newest window {newest['window_start']:%Y-%m-%d %H:%M} – {newest['window_end']:%Y-%m-%d %H:%M} UTC, "
              if pd.notna(newest["window_start"]) and pd.notna(newest["window_end"]) else "")
    st.caption(f"{window}compared with the training reference on {newest['computed_at']:%Y-%m-%d %H:%M} UTC. "
               f"A feature drifts when its statistic is above the threshold (KS also needs a p-value below "
               f"{KS_ALPHA}); PSI has no p-value.")
    table(drift.assign(p_value=drift["p_value"].map(p_value)), {
        "feature": "Feature", "drifted": "Drifted", "method": "Test", "statistic": "Statistic", "p_value": "p-value",
        "threshold": "Threshold"},
        column_config={"Statistic": st.column_config.NumberColumn(format="%.3f")})
else:
    st.info("No drift report yet: drift is measured after each scoring run.", icon=":material/info:")
