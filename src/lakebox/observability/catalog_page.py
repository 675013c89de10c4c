"""Catalog: every dataset (raw, staging, marts, ml) with its dbt description, columns and
types, tests and their latest results, the gate's checks, row counts and freshness per run,
anomalies, the owning pipeline, and lineage at table and column level to click through.

What it shows comes from `read_catalog`, the same as `lakebox catalog --export`. A dataset
named in the URL (`?dataset=analytics.daily_order_metrics`) opens at once, so a link to it
can be shared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from lakebox.observability.catalog import Catalog, read_catalog
from lakebox.observability.lineage.columns import Column
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse

DATASETS = {"name": "Dataset", "layer": "Layer", "pipeline": "Pipeline", "rows": "Rows (last run)",
            "refreshed": "Last refreshed", "anomalies": "Anomalies", "description": "Description"}
COLUMNS = {"column": "Column", "type": "Type", "description": "Description", "from": "Comes from",
           "into": "Goes into"}
TESTS = {"name": "Test", "column": "Column", "result": "Latest result", "detail": "From"}
CHECKS = {"name": "Check", "column": "Column", "result": "Result"}
HISTORY = {"run_id": "Run", "day": "Day", "recorded_at": "Recorded", "rows": "Rows"}
PICKED = "catalog_dataset"
CACHE_SECONDS = 30  # as the dashboard's other pages: reloads do not read the warehouse again


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Reading the catalog…")
def load_catalog(home: str, warehouse: str) -> Catalog:
    """Read-only and let go at once (the dashboard's rule): a held DuckDB file would block the next run."""
    settings = Settings.load()
    with open_warehouse(settings, read_only=True) as wh:
        return read_catalog(settings, wh, read_only=True)


def readable(df: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    return df[list(names)].rename(columns=names)


def table(df: pd.DataFrame, names: dict[str, str], column_config: dict[str, Any] | None = None) -> None:
    """A table with the column names people read, no index, missing values blank."""
    st.dataframe(readable(df, names), hide_index=True, placeholder="", column_config=column_config or {})


def kpi_row(kpis: list[tuple[str, str, str | None]]) -> None:
    """(label, value, help) side by side, wrapping on a narrow page instead of cutting values short."""
    with st.container(horizontal=True, gap="medium"):
        for label, value, tip in kpis:
            st.metric(label, value, help=tip, width="stretch")


def pick(name: str) -> None:
    st.session_state[PICKED] = name


def links(names: Iterable[str], key: str) -> None:
    """Each dataset as a button that opens it."""
    names = list(names)
    if not names:
        st.caption("none")
        return
    with st.container(horizontal=True, gap="small"):
        for name in names:
            st.button(name, key=f"{key}:{name}", on_click=pick, args=(name,), icon=":material/dataset:")


def table_graph(catalog: Catalog, focus: str) -> str:
    """DOT of every dataset upstream and downstream of `focus`, the focus highlighted."""
    nodes, edges = {focus}, set()
    for up in (True, False):
        todo = [focus]
        while todo:
            here = todo.pop()
            for there in (catalog.upstream(here) if up else catalog.downstream(here)):
                edges.add((there, here) if up else (here, there))
                if there not in nodes:
                    nodes.add(there)
                    todo.append(there)
    lines = ['digraph { rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#f0f2f6", '
             'fontname="sans-serif", fontsize=11];']
    lines += [f'"{n}" [fillcolor="{"#ffd8a8" if n == focus else "#f0f2f6"}"];' for n in sorted(nodes)]
    lines += [f'"{a}" -> "{b}";' for a, b in sorted(edges)]
    return "\n".join([*lines, "}"])


def column_graph(catalog: Catalog, focus: Column) -> str:
    """DOT of the column's chain upstream and downstream, each edge labelled with its transformation."""
    nodes, edges = {focus}, set()
    for up in (True, False):
        todo = [focus]
        while todo:
            here = todo.pop()
            for there, kind in catalog.column_edges(here, up):
                edges.add((there, here, kind) if up else (here, there, kind))
                if there not in nodes:
                    nodes.add(there)
                    todo.append(there)
    lines = ['digraph { rankdir=LR; node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=11];'
             ' edge [fontname="sans-serif", fontsize=9];']
    lines += [f'"{t}.{c}" [fillcolor="{"#ffd8a8" if (t, c) == focus else "#f0f2f6"}"];' for t, c in sorted(nodes)]
    lines += [f'"{a[0]}.{a[1]}" -> "{b[0]}.{b[1]}" [label="{k}"];' for a, b, k in sorted(edges)]
    return "\n".join([*lines, "}"])


def _fan_out(edges: list[tuple[Column, str]]) -> str:
    """How far a column goes, short enough for a cell: the full list is under 'Column lineage of'."""
    if not edges:
        return ""
    tables = {t for (t, _), _ in edges}
    return f"{len(edges)} column(s) of " + (next(iter(tables)) if len(tables) == 1 else f"{len(tables)} datasets")


def overview(catalog: Catalog) -> pd.DataFrame:
    return pd.DataFrame([{
        "name": d.name, "layer": d.layer, "pipeline": d.pipeline,
        "rows": f"{d.history[0].rows:,}" if d.history else "",
        "refreshed": d.history[0].recorded_at[:16] if d.history else "",
        "anomalies": str(len(d.anomalies) or ""), "description": d.description,
    } for d in catalog.datasets.values()], columns=list(DATASETS)).fillna("")


settings = Settings.load()
st.title("Catalog")
catalog = load_catalog(str(settings.home), settings.warehouse)
if not catalog.datasets:
    st.info("No datasets yet — run `lakebox run` (or `lakebox demo`), then press 'Refresh data'.",
            icon=":material/info:")
    st.stop()

names = list(catalog.datasets)
asked = st.query_params.get("dataset")
if PICKED not in st.session_state or st.session_state[PICKED] not in catalog.datasets:
    st.session_state[PICKED] = asked if asked in catalog.datasets else names[0]
layers = sorted({d.layer for d in catalog.datasets.values()}, key=["raw", "staging", "analytics", "ml"].index)
st.caption(f"{len(names)} datasets: " + ", ".join(
    f"{sum(d.layer == layer for d in catalog.datasets.values())} {layer}" for layer in layers))
with st.expander("All datasets", expanded=False):
    st.table(readable(overview(catalog), DATASETS), hide_index=True, border="horizontal")

name = st.selectbox("Dataset", names, key=PICKED,
                    format_func=lambda n: f"{n}  ({catalog.datasets[n].pipeline or 'no pipeline'})")
st.query_params["dataset"] = name
ds = catalog.datasets[name]

st.header(name, divider="gray")
if ds.description:
    st.markdown(ds.description)
latest = ds.history[0] if ds.history else None
failed = sum(t.result == "failed" for t in ds.tests) + sum(not c.passed for c in ds.checks)
kpi_row([
    ("Layer", ds.layer, None), ("Pipeline", ds.pipeline or "–", None),
    ("Rows (last run)", f"{latest.rows:,}" if latest else "–", f"Run {latest.run_id}" if latest else None),
    ("Last refreshed", latest.recorded_at[:16] if latest else "–", "UTC, when the run recorded its row counts"),
    ("Failing tests and checks", str(failed), None),
    ("Anomalies", str(len(ds.anomalies)), None),
])

st.subheader("Lineage")
up, down = catalog.upstream(name), catalog.downstream(name)
left, right = st.columns(2)
with left:
    st.markdown("**Upstream** (made from)")
    links(up, "up")
with right:
    st.markdown("**Downstream** (feeds)")
    links(down, "down")
if up or down:
    st.graphviz_chart(table_graph(catalog, name))

if ds.columns:
    st.subheader("Columns")
    rows = [{"column": c, "type": k, "description": text,
             "from": ", ".join(f"{t}.{col} ({how})" for (t, col), how in catalog.column_edges((name, c), up=True)),
             "into": _fan_out(catalog.column_edges((name, c), up=False))}
            for c, k, text in ds.columns]
    # a static table wraps long lineage lists instead of cutting them at the cell's edge
    st.table(readable(pd.DataFrame(rows, columns=list(COLUMNS)), COLUMNS), hide_index=True, border="horizontal")
    column = st.selectbox("Column lineage of", [c for c, _, _ in ds.columns], key=f"column:{name}")
    if column:
        chain = column_graph(catalog, (name, column))
        shown = [t for (t, _), _ in [*catalog.column_edges((name, column), True),
                                     *catalog.column_edges((name, column), False)]]
        if shown:
            for label, up_ in (("Comes from", True), ("Goes into", False)):
                found = catalog.column_edges((name, column), up_)
                if found:
                    st.markdown(f"**{label}:** " + ", ".join(f"`{t}.{c}` ({how})" for (t, c), how in found))
            st.graphviz_chart(chain)
            st.caption("Open a dataset this column comes from or goes into:")
            links(sorted(set(shown)), f"col:{column}")
        else:
            st.caption(f"{name}.{column} has no column lineage: it is read from outside the warehouse "
                       "(a raw column), or no model selects it.")
        indirect = catalog.graph.indirect.get(name, [])
        if indirect:
            st.caption("Every row is shaped by (filter, grouping, join): " + ", ".join(
                f"{t}.{c} ({how})" for (t, c), how in indirect))

st.subheader("Tests")
if ds.tests:
    st.table(readable(pd.DataFrame([dataclasses.asdict(t) for t in ds.tests], columns=list(TESTS)), TESTS),
             hide_index=True, border="horizontal")
else:
    st.caption("No dbt tests declared for this dataset.")
if ds.checks:
    st.markdown("**Quality gate, latest run**")
    table(pd.DataFrame([{"name": c.name, "column": c.column,
                         "result": "passed" if c.passed else f"failed: {c.failing_rows:,} row(s)"}
                        for c in ds.checks], columns=list(CHECKS)), CHECKS)

st.subheader("Row counts and freshness")
if ds.anomalies:
    for run_id, why in ds.anomalies[:10]:
        st.warning(f"Run {run_id}: {why}", icon=":material/warning:")
if not ds.history:
    st.caption("No row counts recorded for this dataset yet (they are recorded for raw tables and marts).")
else:
    history = pd.DataFrame([dataclasses.asdict(c) for c in ds.history], columns=list(HISTORY))
    history["recorded_at"] = pd.to_datetime(history["recorded_at"])
    st.altair_chart(alt.Chart(history).mark_line(point=True).encode(
        x=alt.X("recorded_at:T", title="Recorded (UTC)", axis=alt.Axis(format="%Y-%m-%d %H:%M", labelAngle=0)),
        y=alt.Y("rows:Q", title="Rows", scale=alt.Scale(zero=True)),
        tooltip=[alt.Tooltip("run_id:N", title="Run"), alt.Tooltip("rows:Q", title="Rows", format=",")],
    ).properties(height=220), width="stretch")
    table(history.head(50), HISTORY, column_config={
        "Recorded": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "Rows": st.column_config.NumberColumn(format="localized")})
