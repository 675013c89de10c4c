"""Platform: recent runs, quality results and quarantined input, from the ops.* audit tables."""

from __future__ import annotations

import math

import streamlit as st

from lakebox.dashboard import data
from lakebox.dashboard.formats import compact, exact
from lakebox.dashboard.layout import Kpi, kpi_row, table
from lakebox.settings import Settings

RUNS = {"run_id": "Run", "pipeline": "Pipeline", "status": "Status", "started_at": "Started",
        "duration_s": "Seconds", "rows_in": "Rows in", "rows_out": "Rows out", "error": "Error"}
STAGES = {"stage": "Stage", "status": "Status", "started_at": "Started", "duration_s": "Seconds",
          "rows_in": "Rows in", "rows_out": "Rows out", "error": "Error"}
CHECKS = {"source": "Source", "check_name": "Check", "column_name": "Column", "failed": "Times failed",
          "checks": "Times run", "failing_rows": "Failing rows", "last_checked": "Last checked"}
FAILURES = {"checked_at": "Checked", "source": "Source", "batch_id": "Batch", "check_name": "Check",
            "column_name": "Column", "failing_rows": "Failing rows", "sample": "Sample rows", "run_id": "Run"}
OPEN_ITEMS = {"id": "ID", "pipeline": "Pipeline", "item": "Item", "failed_rules": "Failed rules", "opened_at": "Opened",
              "source": "Source", "batch_id": "Batch", "quarantine_path": "Kept at"}
BATCHES = {"batch_id": "Batch", "source": "Source", "failed_rules": "Failed rules", "rows": "Rows",
           "quarantined_at": "Quarantined", "landed_at": "Landed", "lake_path": "Lake path", "run_id": "Run"}

wh = data.configured_warehouse()
st.title("Platform")

has_runs = data.has_rows(wh, "ops.pipeline_runs")
has_batches = data.has_rows(wh, "ops.batches")
if not (has_runs or has_batches):
    st.info("No pipeline runs yet — run `lakebox run` (or `lakebox demo`), then press 'Refresh data'.",
            icon=":material/info:")
    st.stop()

counts = data.run_counts(wh) if has_runs else None
dq = data.dq_summary(wh) if data.has_rows(wh, "ops.dq_results") else None
quarantined = data.quarantined_batches(wh) if has_batches else None
waiting = data.open_quarantine(wh)

kpis = []
if counts is not None:
    latest = data.runs_page(wh, per_page=1).iloc[0]
    total = int(counts["runs"].sum())
    failed = int(counts.loc[counts["status"] == "failed", "runs"].sum())
    kpis += [Kpi("Runs", compact(total), exact(total)), Kpi("Failed runs", compact(failed), exact(failed)),
             Kpi("Latest run", str(latest["pipeline"]), f"Run {latest['run_id']}, started "
                 f"{latest['started_at']:%Y-%m-%d %H:%M} UTC.", str(latest["status"]))]
kpis += [Kpi("Quarantined batches", compact(0 if quarantined is None else len(quarantined))),
         Kpi("Open quarantine items", compact(len(waiting)))]
kpi_row(kpis)

st.subheader("Open quarantine items")
if waiting.empty:
    st.success("No open quarantined items: every run's input is in the marts.", icon=":material/check_circle:")
else:
    st.warning(f"{len(waiting)} quarantined item(s) are open, so runs of their pipelines end `partial`: send a "
               "corrected version (same file name, or the same request), or `lakebox quarantine dismiss ID "
               "--reason ...`.", icon=":material/warning:")
    table(waiting, OPEN_ITEMS, column_config={"Failed rules": st.column_config.TextColumn(width="large")})

st.subheader("Runs")
if counts is None:
    st.info("No runs recorded yet.")
else:
    with st.sidebar:
        st.subheader("Filters")
        pipelines = st.multiselect("Pipeline", sorted(counts["pipeline"].unique()), placeholder="All pipelines")
        recorded = set(counts["status"])
        statuses = st.multiselect("Status", sorted(recorded | ({data.INTERRUPTED} if "running" in recorded else set())),
                                  placeholder="All statuses")
    matching = counts
    if pipelines:
        matching = matching[matching["pipeline"].isin(pipelines)]
    if statuses:
        matching = matching[matching["status"].isin({"running" if s == data.INTERRUPTED else s for s in statuses})]
    found = int(matching["runs"].sum())
    pages = max(1, math.ceil(found / data.RUNS_PER_PAGE))
    page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1,
                               key="runs_page")) if pages > 1 else 1
    runs = data.runs_page(wh, tuple(pipelines) or None, tuple(statuses) or None, page)
    first = (page - 1) * data.RUNS_PER_PAGE
    st.caption(f"Runs {first + 1:,}–{first + len(runs):,} of {found:,}, newest first" if len(runs)
               else "No runs match these filters.")
    if not runs.empty:
        table(runs, RUNS, column_config={
            "Seconds": st.column_config.NumberColumn(format="%.2f"),
            "Started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Error": st.column_config.TextColumn(width="large")})
        pipeline_of = runs.set_index("run_id")["pipeline"]
        run_id = st.selectbox("Stages of run", runs["run_id"], format_func=lambda r: f"{r} ({pipeline_of.at[r]})")
        if run_id:
            stages = data.stage_runs(wh, run_id)
            if stages.empty:
                st.caption("No stages recorded for this run.")
            else:
                table(stages, STAGES, column_config={"Seconds": st.column_config.NumberColumn(format="%.2f")})

st.subheader("Quality checks")
if dq is None:
    st.info("No quality results yet.")
else:
    failing = dq[dq["failed"] > 0]
    st.caption(f"{len(dq)} checks, {len(failing)} with failures")
    table(dq, CHECKS)
    if not failing.empty:
        with st.expander("Latest failures with sample rows"):
            table(data.dq_failures(wh), FAILURES)

st.subheader("Quarantined batches")
if quarantined is None or quarantined.empty:
    st.success("Nothing quarantined: every batch passed its contract.", icon=":material/check_circle:")
else:
    table(quarantined, BATCHES, column_config={"Failed rules": st.column_config.TextColumn(width="large")})

documents = data.quarantine_files(Settings.load().lake)
if documents:
    st.subheader("Quarantine folder")
    st.caption("Each quarantined item keeps its original bytes in the lake, with an errors.json beside it.")
    for doc in documents[:50]:
        with st.expander(doc["key"]):
            st.json(doc["document"])
