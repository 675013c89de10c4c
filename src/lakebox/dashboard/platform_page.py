"""Platform: recent runs, quality results and quarantined input, from the ops.* audit tables."""

from __future__ import annotations

import streamlit as st

from lakebox.dashboard import data
from lakebox.settings import Settings

wh = data.configured_warehouse()
st.title("Platform")

has_runs = data.has_rows(wh, "ops.pipeline_runs")
has_batches = data.has_rows(wh, "ops.batches")
if not (has_runs or has_batches):
    st.info("No pipeline runs yet — run `lakebox run` (or `lakebox demo`), then press 'Refresh data'.",
            icon=":material/info:")
    st.stop()

runs = data.recent_runs(wh) if has_runs else None
dq = data.dq_summary(wh) if data.has_rows(wh, "ops.dq_results") else None
quarantined = data.quarantined_batches(wh) if has_batches else None
waiting = data.open_quarantine(wh)

cols = st.columns(5)
if runs is not None:
    latest = runs.iloc[0]
    cols[0].metric("Runs shown", f"{len(runs):,}")
    cols[1].metric("Failed runs", f"{int((runs['status'] == 'failed').sum()):,}")
    cols[2].metric("Latest run", f"{latest['pipeline']}: {latest['status']}")
cols[3].metric("Quarantined batches", f"{0 if quarantined is None else len(quarantined):,}")
cols[4].metric("Open quarantine items", f"{len(waiting):,}")

st.subheader("Open quarantine items")
if waiting.empty:
    st.success("No open quarantined items: every run's input is in the marts.", icon=":material/check_circle:")
else:
    st.warning(f"{len(waiting)} quarantined item(s) are open, so runs of their pipelines end `partial`: send a "
               "corrected version (same file name, or the same request), or `lakebox quarantine dismiss ID "
               "--reason ...`.", icon=":material/warning:")
    st.dataframe(waiting, hide_index=True, column_config={"failed_rules": st.column_config.TextColumn(width="large")})

st.subheader("Recent runs")
if runs is None:
    st.info("No runs recorded yet.")
else:
    st.dataframe(runs, hide_index=True,
                 column_config={"duration_s": st.column_config.NumberColumn("seconds", format="%.2f")})
    pipeline_of = runs.set_index("run_id")["pipeline"]
    run_id = st.selectbox("Stages of run", runs["run_id"], format_func=lambda r: f"{r} ({pipeline_of.at[r]})")
    if run_id:
        stages = data.stage_runs(wh, run_id)
        if stages.empty:
            st.caption("No stages recorded for this run.")
        else:
            st.dataframe(stages, hide_index=True,
                         column_config={"duration_s": st.column_config.NumberColumn("seconds", format="%.2f")})

st.subheader("Quality checks")
if dq is None:
    st.info("No quality results yet.")
else:
    failing = dq[dq["failed"] > 0]
    st.caption(f"{len(dq)} checks, {len(failing)} with failures")
    st.dataframe(dq, hide_index=True)
    if not failing.empty:
        with st.expander("Latest failures with sample rows"):
            st.dataframe(data.dq_failures(wh), hide_index=True)

st.subheader("Quarantined batches")
if quarantined is None or quarantined.empty:
    st.success("Nothing quarantined: every batch passed its contract.", icon=":material/check_circle:")
else:
    st.dataframe(quarantined, hide_index=True, column_config={"failed_rules": st.column_config.TextColumn(width="large")})

documents = data.quarantine_files(Settings.load().lake)
if documents:
    st.subheader("Quarantine folder")
    st.caption("Each quarantined item keeps its original bytes in the lake, with an errors.json beside it.")
    for doc in documents[:50]:
        with st.expander(doc["key"]):
            st.json(doc["document"])
