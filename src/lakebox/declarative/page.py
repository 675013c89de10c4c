"""Every declarative pipeline's page: its marts (a chart along each one's date or time column,
and its newest rows), its models (champion, metrics, latest predictions), its runs, quality
checks and open quarantine items. One file serves them all: the pipeline is the page's url
path (see lakebox.dashboard.layout.shown_page)."""

from __future__ import annotations

import re

import altair as alt
import pandas as pd
import streamlit as st

from lakebox.dashboard import data
from lakebox.dashboard.formats import compact, exact, human, human_names
from lakebox.dashboard.layout import Kpi, full_legend, kpi_row, shown_page, table
from lakebox.declarative import page_data
from lakebox.declarative.config import ModelConfig
from lakebox.ml.tracking import StoreError
from lakebox.settings import redact

RUNS = {"run_id": "Run", "status": "Status", "started_at": "Started", "duration_s": "Seconds",
        "rows_in": "Rows in", "rows_out": "Rows out"}
CHECKS = {"resource": "Resource", "rule": "Rule", "failed": "Failed", "checks": "Runs", "failing_rows": "Failing rows",
          "last_checked": "Last checked"}
ITEMS_LISTED = 20  # open quarantine items written out (each wraps whole); more: `lakebox quarantine list`
METRIC_NAMES = {"mae": "MAE", "mse": "MSE", "r2": "R²", "f1_macro": "F1 (macro)", "accuracy": "Accuracy",
                "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)"}
STAMP = "YYYY-MM-DD HH:mm"


def _rows(df: pd.DataFrame, shape: page_data.TableShape, key: str) -> None:
    """A table of any of its rows: human column names, dates as days, timestamps to the minute."""
    names = human_names(list(df.columns))
    config: dict[str, object] = {names[c]: st.column_config.DateColumn(format="YYYY-MM-DD")
                                 for c in shape.dates if c in names}
    config.update({names[c]: st.column_config.DatetimeColumn(format=STAMP) for c in shape.timestamps if c in names})
    table(df, names, column_config=config, key=key)


def _plain(text: str) -> str:
    """`text` shown as written by st.markdown (an error's `*` or `_` is no emphasis)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def _metric(name: str) -> str:
    """`mae` -> `MAE`, `baseline_mae` -> `Baseline MAE`."""
    if name.startswith("baseline_"):
        return f"Baseline {_metric(name.removeprefix('baseline_'))}"
    return METRIC_NAMES.get(name, human(name))


def _champion(pipeline: str, model: ModelConfig, found: page_data.Champion | None) -> None:
    """The champion's version and its holdout metrics, or what brings one."""
    if found is None:
        st.info(f"No champion yet: `lakebox run {pipeline}` trains one once {model.from_} holds enough "
                "labelled rows.", icon=":material/info:")
        return
    score = found.metrics.get(model.metric)
    kpi_row([
        Kpi("Champion version", found.version,
            f"Registered {found.registered_at:%Y-%m-%d %H:%M} UTC." if found.registered_at else None),
        Kpi(f"Champion {_metric(model.metric)}", "–" if score is None else f"{score:,.4g}",
            f"On the newest labelled rows, held out from training: {exact(score, 6)}."),
        *(Kpi(_metric(k), f"{v:,.4g}") for k, v in sorted(found.metrics.items()) if k != model.metric),
    ])


wh = data.configured_warehouse()
pipeline = page_data.declared(page_data.check_page(shown_page()))
st.title(pipeline.title)
if pipeline.description:
    st.caption(pipeline.description)

built = page_data.built_marts(wh, pipeline.marts)
runs = page_data.pipeline_runs(wh, pipeline.name)
checks = page_data.quality_checks(wh, pipeline.name, pipeline.sources)
waiting = page_data.open_items(wh, pipeline.name)

if runs.empty and not built:
    st.info(f"No data yet — run `lakebox run {pipeline.name}`, then press 'Refresh data'.", icon=":material/info:")
    st.stop()

kpis = []
if not runs.empty:
    latest = runs.iloc[0]
    kpis.append(Kpi("Latest run", str(latest["status"]),
                    f"Run {latest['run_id']}, started {latest['started_at']:%Y-%m-%d %H:%M} UTC."))
kpis += [Kpi("Marts built", f"{len(built)} of {len(pipeline.marts)}",
             "Its models/marts, as tables in analytics."),
         Kpi("Failing checks", compact(int((checks["failed"] > 0).sum())), "Quality checks of its sources that "
             "failed at least once."),
         Kpi("Open quarantine items", compact(len(waiting)))]
kpi_row(kpis)

if not waiting.empty:
    st.warning(f"{len(waiting)} quarantined item(s) are open, so its runs end `partial`: send a corrected version, "
               "or `lakebox quarantine dismiss ID --reason ...` (see the list below).", icon=":material/warning:")

for mart in pipeline.marts:
    st.subheader(human(mart.split(".", 1)[1]))
    if mart not in built:
        st.info(f"`{mart}` is not built yet: it is built by the next successful run.", icon=":material/info:")
        continue
    shape = page_data.table_shape(wh, mart)
    count = page_data.mart_count(wh, mart)
    time = shape.time
    measures = [c for c in shape.numbers if c != time]
    if time and measures and count:
        measure = measures[0] if len(measures) == 1 else st.selectbox(
            "Measure", measures, format_func=human, key=f"measure_{mart}")
        series = page_data.series_column(wh, mart, shape)
        trend = page_data.mart_trend(wh, mart, time, measure, series)
        days = time in shape.dates
        encoding = {"x": alt.X(f"{time}:T", title=human(time), axis=alt.Axis(format="%d %b" if days else "%d %b %H:%M")),
                    "y": alt.Y(f"{measure}:Q", title=human(measure), scale=alt.Scale(zero=False)),
                    "tooltip": [alt.Tooltip(f"{time}:T", title=human(time), format="%Y-%m-%d" if days else "%Y-%m-%d %H:%M"),
                                *([alt.Tooltip(f"{series}:N", title=human(series))] if series else []),
                                alt.Tooltip(f"{measure}:Q", title=human(measure), format=",.4~f")]}
        if series:
            encoding["color"] = alt.Color(f"{series}:N", legend=full_legend(human(series)))
        st.altair_chart(alt.Chart(trend).mark_line(point=len(trend) <= 60).encode(**encoding), width="stretch")
    rows = page_data.mart_rows(wh, mart, shape)
    shown = "" if count <= len(rows) else (f"; the newest {len(rows):,} by {human(time).lower()}" if time
                                           else f"; the first {len(rows):,}")
    st.caption(f"`{mart}`: {count:,} rows{shown}")
    _rows(rows, shape, f"rows_{mart}")

for model in pipeline.models:
    st.subheader(f"Model {model.name}")
    st.caption(f"{'Classifier' if model.task == 'classify' else 'Regression'} of {human(model.target).lower()} "
               f"from {model.from_}, ranked by {_metric(model.metric)}; predictions in {model.predictions_table}.")
    try:
        found = page_data.champion(wh, model.name)
    except StoreError as exc:  # the registry's trouble is this section's, the rest of the page still reads
        st.warning(redact(str(exc)), icon=":material/warning:")
    else:
        _champion(pipeline.name, model, found)
    predictions = page_data.latest_predictions(wh, model)
    if predictions is None:
        st.caption("No predictions yet: rows are scored once a champion exists.")
    else:
        versions = sorted(predictions["model_version"].astype(str).unique())
        st.caption(f"The newest {len(predictions):,} predictions, by version {', '.join(versions)}.")
        _rows(predictions.drop(columns=["model_name", "model_version"]),
              page_data.table_shape(wh, model.predictions_table), f"predictions_{model.name}")

st.subheader("Runs")
if runs.empty:
    st.info(f"No runs yet: `lakebox run {pipeline.name}`.")
else:
    table(runs, RUNS, column_config={"Seconds": st.column_config.NumberColumn(format="%.2f"),
                                     "Started": st.column_config.DatetimeColumn(format=STAMP)}, key="runs")
    for run in runs[runs["error"].fillna("") != ""].itertuples():  # the newest runs only: words wrap, a cell cuts
        st.markdown(f"**{_plain(str(run.run_id))}** ({_plain(str(run.status))}): {_plain(str(run.error))}")

st.subheader("Quality checks")
if checks.empty:
    st.info("No quality results yet for " + ", ".join(pipeline.sources) + ".")
else:
    failing = checks[checks["failed"] > 0]
    st.caption(f"{len(checks)} checks on {', '.join(pipeline.sources)}; {len(failing)} with failures")
    rules = [f"{c}({col})" if col else str(c) for c, col in zip(checks["check_name"], checks["column_name"], strict=True)]
    table(checks.assign(rule=rules), CHECKS, key="checks", column_config={
        "Failed": st.column_config.NumberColumn(help="Times the check failed"),
        "Runs": st.column_config.NumberColumn(help="Times the check ran"),
        "Last checked": st.column_config.DatetimeColumn(format=STAMP)})

st.subheader("Open quarantine items")
if waiting.empty:
    st.success("No open quarantined items: all its input is in the marts.", icon=":material/check_circle:")
else:
    for item in waiting.head(ITEMS_LISTED).itertuples():
        st.markdown(f"**{_plain(str(item.item))}**, opened {item.opened_at:%Y-%m-%d %H:%M} UTC (ID `{item.id}`): "
                    f"{_plain(str(item.failed_rules))}")
    more = f"{len(waiting) - ITEMS_LISTED:,} more: `lakebox quarantine list`; " if len(waiting) > ITEMS_LISTED else ""
    st.caption(f"{more}`lakebox quarantine show ID` shows where an item is kept and its sample rows.")
