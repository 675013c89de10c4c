"""GitHub commits: activity and commit types from the marts, and the commit classifier
(the champion's metrics, predictions against labels, drift flags) from ml.*.

The ML tables (written by `lakebox.ml` for the registry model `commit-classifier`) appear
once the ML stages have run; until then their sections say so.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from lakebox.dashboard import data

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
cols = st.columns(5)
cols[0].metric("Commits", f"{commits:,}")
cols[1].metric("Authors", f"{int(totals['authors']):,}")
cols[2].metric("Merges", f"{int(totals['merges']):,}")
cols[3].metric("Conventional", f"{int(totals['conventional']) / commits:.0%}" if commits else "–")
cols[4].metric("Breaking changes", f"{int(totals['breaking']):,}")

weekly = data.fetch(wh, f"""
    select week_start, commit_type, sum(commits) as commits
    from {TRENDS} where {where}
    group by week_start, commit_type order by week_start""", params)
left, right = st.columns(2)
with left:
    st.subheader("Commits per week, by type")
    st.bar_chart(weekly, x="week_start", y="commits", color="commit_type", x_label="week", y_label="commits")
with right:
    st.subheader("Share of each type")
    mix = weekly.groupby("commit_type", as_index=False)["commits"].sum().sort_values("commits", ascending=False)
    mix["share"] = mix["commits"] / mix["commits"].sum()
    st.dataframe(mix, hide_index=True, column_config={"share": st.column_config.ProgressColumn(
        format="percent", min_value=0.0, max_value=1.0)})

st.subheader("Most active authors")
authors = data.fetch(wh, f"""
    select repo, max(author_name) as author, max(author_login) as login, sum(commits) as commits,
           sum(merges) as merges, count(*) as active_days, max(activity_date) as last_active
    from {ACTIVITY} where {where}
    group by repo, author_key order by commits desc limit 20""", params)
st.dataframe(authors, hide_index=True, column_config={"last_active": st.column_config.DateColumn("last active")})

st.header("Commit classifier")
if data.has_rows(wh, DECISIONS):
    decisions = data.fetch(wh, f"select version, decision, metric, value, champion_value, reason, decided_at "
                               f"from {DECISIONS} where model_name = ? order by decided_at desc", (MODEL,))
    champions = decisions[decisions["decision"] == "champion"]
    if not champions.empty:
        champion = champions.iloc[0]
        champion_cols = st.columns(3)
        champion_cols[0].metric("Champion version", str(champion["version"]))
        champion_cols[1].metric(f"Champion {champion['metric']}", f"{champion['value']:.3f}")
        if len(decisions) > 1:
            champion_cols[2].metric("Versions decided", f"{len(decisions)}")
    st.dataframe(decisions.head(20), hide_index=True)
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
        st.metric("Agreement with the conventional type", f"{right_ones / int(scored['commits'].sum()):.1%}")
        confusion = scored.pivot_table(index="label", columns="predicted_type", values="commits", fill_value=0)
        st.dataframe(confusion)
else:
    st.info("No predictions yet: commits are scored once a champion model exists.", icon=":material/info:")

st.subheader("Drift")
if data.has_rows(wh, DRIFT):
    drift = data.fetch(wh, f"""
        select feature, method, statistic, p_value, threshold, drifted, window_start, window_end, computed_at
        from {DRIFT} where model_name = ? and computed_at = (select max(computed_at) from {DRIFT} where model_name = ?)
        order by drifted desc, feature""", (MODEL, MODEL))
    flagged = drift[drift["drifted"].astype(bool)]
    st.metric("Features flagged", f"{len(flagged)} of {len(drift)}")
    if not flagged.empty:
        st.warning("Drift in the newest window: " + ", ".join(map(str, flagged["feature"])), icon=":material/warning:")
    st.dataframe(drift, hide_index=True)
else:
    st.info("No drift report yet: drift is measured after each scoring run.", icon=":material/info:")
