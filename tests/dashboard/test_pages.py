"""Each page rendered through Streamlit's AppTest over a real DuckDB warehouse file."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lakebox.dashboard import APP
from lakebox.dashboard.formats import compact, money
from tests.dashboard.conftest import FIRST_DAY, LAST_DAY, ORDER_DAYS, STORES, expected_sales

PAGES = {"retail": "retail_page.py", "orders": "orders_page.py", "platform": "platform_page.py",
         "github": "github_page.py", "who": "who_page.py"}


def render(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    if page != "retail":
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart_data(at: AppTest, index: int) -> pd.DataFrame:
    """The rows a chart draws (Streamlit ships them to the browser as Arrow)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    proto = at.get("vega_lite_chart")[index].proto
    return convert_arrow_bytes_to_pandas_df(proto.datasets[0].data.data)


def table(at: AppTest, column: str) -> pd.DataFrame | None:
    """The first table on the page that has `column`, or None."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def sidebar_widget(at: AppTest, kind: str, label: str):
    return next(w for w in getattr(at.sidebar, kind) if w.label == label)


def test_retail_shows_kpis_for_all_stores_and_dates(warehouse_home: Path) -> None:
    at = render("retail")
    sales, transactions = expected_sales(list(STORES), FIRST_DAY, LAST_DAY)
    assert (sales, transactions) == (624_000, 59_000)
    assert metrics(at) == {
        "Total sales": "624.0 k",  # compact, so it fits its box at any width; the exact figure is its help
        "Transactions": "59.0 k",
        "Avg basket": f"{sales / transactions:,.2f}",
        "Stores": "4",
        "Lost to stockouts": "1,500",
    }
    assert next(m for m in at.metric if m.label == "Total sales").proto.help == "624,000.00"
    insights = table(at, "Insight")
    assert list(insights.columns) == ["Severity", "Store", "Region", "Insight"]
    assert list(insights["Severity"]) == ["high", "medium", "low"]
    assert list(insights["Store"]) == ["Delta Express", "Alpha Central", "Gamma Mall"]
    assert "Grocery ran out on 6 days" in insights["Insight"].iloc[0]
    promotions = table(at, "Promotion")
    assert list(promotions["Promotion"]) == ["P1", "P2", "P3"]  # best lift first
    assert len(at.get("vega_lite_chart")) == 5  # trend, promotions, stockouts, category mix, weekend
    trend = chart_data(at, 0)
    assert len(trend) == 59 * 2 and set(trend["region"]) == {"North", "South"}
    saturday = trend[trend["date"] == pd.Timestamp("2026-01-03")].set_index("region")["total_sales"]
    assert saturday.to_dict() == {"North": 1000 + 2000 + 2 * 500, "South": 3000 + 4000 + 2 * 500}
    lift = chart_data(at, 1).set_index("category")["avg_lift_pct"].to_dict()
    assert lift == {"beverages": 25, "grocery": 10, "household": -5}
    lost = chart_data(at, 2).set_index("category")["estimated_lost_sales"].to_dict()
    assert lost == {"grocery": 1200, "beverages": 300}
    uplift = chart_data(at, 4).set_index("format")["weekend_uplift_pct"].to_dict()
    assert uplift == pytest.approx({"hyper": (50 + 16.67) / 2, "convenience": (25 + 12.5) / 2})


def test_retail_filters_change_the_figures(warehouse_home: Path) -> None:
    at = render("retail")

    sidebar_widget(at, "multiselect", "Region").set_value(["North"]).run()
    sales, transactions = expected_sales(["S001", "S002"], FIRST_DAY, LAST_DAY)
    shown = metrics(at)
    assert shown["Total sales"] == money(sales) == "194.0 k"
    assert shown["Transactions"] == compact(transactions) == "17.7 k"
    assert shown["Stores"] == "2"
    assert shown["Lost to stockouts"] == "300.00"
    assert list(table(at, "Insight")["Store"]) == ["Alpha Central"]  # only North's insight
    assert set(chart_data(at, 0)["region"]) == {"North"}
    assert set(chart_data(at, 3)["category"]) == {"grocery", "beverages"}  # North's category mix
    store_options = sidebar_widget(at, "multiselect", "Store").options
    assert len(store_options) == 2 and all("North" not in o for o in store_options)

    sidebar_widget(at, "multiselect", "Store").set_value(["S002"]).run()
    start, end = dt.date(2026, 1, 3), dt.date(2026, 1, 4)  # a Saturday and a Sunday
    sidebar_widget(at, "date_input", "Dates").set_value((start, end)).run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Total sales"] == "5,000"
    assert shown["Transactions"] == "400"
    assert shown["Stores"] == "1"
    assert table(at, "Insight") is None  # S002 has no insight
    assert any("No insights for these filters" in i.value for i in at.info)
    assert table(at, "Promotion").empty  # P3 (S002) runs 20–26 Jan, outside 3–4 Jan
    assert list(table(at, "Days out of stock")["Category"]) == ["beverages"]
    assert list(chart_data(at, 0)["total_sales"]) == [2500, 2500]


def test_retail_insight_severity_filter(warehouse_home: Path) -> None:
    at = render("retail")
    at.pills(key="insight_severity").set_value(["high"]).run()
    assert list(table(at, "Insight")["Severity"]) == ["high"]


def test_a_month_the_data_only_partly_covers_is_marked_partial(warehouse_home: Path) -> None:
    con = duckdb.connect(str(warehouse_home / "warehouse.duckdb"))
    con.execute("delete from analytics.store_daily_performance where date > date '2026-02-15'")
    con.close()
    at = render("retail")
    mix = chart_data(at, 3)
    assert set(mix["month_label"]) == {"Jan 2026", "Feb 2026 (partial)"}
    assert any("a month marked partial has only the days loaded so far" in c.value for c in at.caption)


def chart_spec(at: AppTest, index: int) -> dict:
    import json

    return json.loads(at.get("vega_lite_chart")[index].proto.spec)


def test_github_page_reads_as_words_and_numbers(warehouse_home: Path) -> None:
    from tests.dashboard.conftest import COMMIT_TYPES

    at = render("github")
    shown = metrics(at)
    assert {k: shown[k] for k in ("Commits", "Authors", "Merges", "Conventional", "Breaking changes")} == {
        "Commits": "420", "Authors": "3", "Merges": "28", "Conventional": "40%", "Breaking changes": "2"}
    assert shown["Champion version"] == "3" and shown["Champion f1_macro"] == "0.654"
    assert shown["Agreement with the conventional type"] == "80.0%" and shown["Features flagged"] == "2 of 4"

    # every one of the 14 commit types in the legend, one a line beside the chart
    types = chart_spec(at, 0)["encoding"]["color"]
    assert types["scale"]["domain"] == sorted(COMMIT_TYPES)
    assert types["legend"] == {"columns": 1, "labelLimit": 0, "orient": "right", "symbolLimit": 0, "title": "type"}

    # the confusion matrix names its axes
    layers = chart_spec(at, 1)["layer"]
    encoding = next(layer["encoding"] for layer in layers if layer["mark"]["type"] == "rect")
    assert (encoding["x"]["title"], encoding["y"]["title"]) == ("predicted", "actual")
    confusion = chart_data(at, 1)
    assert set(zip(confusion["label"], confusion["predicted_type"], confusion["commits"], strict=True)) == {
        ("docs", "docs", 12), ("feat", "feat", 12), ("fix", "fix", 12),
        ("docs", "chore", 3), ("feat", "chore", 3), ("fix", "chore", 3)}

    recent = table(at, "Predicted")
    assert list(recent.columns) == ["Committed", "Predicted", "Actual", "Confidence", "Repository",
                                    "Message (without its type)"]
    assert len(recent) == 50  # the newest 50 of 60 scored commits
    assert recent["Message (without its type)"].iloc[0] == "change number 59 of the parser"
    assert pd.isna(recent["Actual"].iloc[0]) and recent["Predicted"].iloc[0] == "feat"  # sha59 has no label

    drift = table(at, "p-value")
    assert list(drift.columns) == ["Feature", "Drifted", "Test", "Statistic", "p-value", "Threshold"]
    assert dict(zip(drift["Feature"], drift["p-value"], strict=True)) == {
        "message_length": "1.23e-12", "hour": "0.0457", "repo": "", "weekday": "0.5"}
    assert any("KS also needs a p-value below 0.01" in c.value for c in at.caption)

    decisions = table(at, "Why")
    assert list(decisions.columns) == ["Version", "Decision", "Metric", "Score", "Champion's score", "Why", "Decided"]
    assert pd.isna(decisions["Champion's score"].iloc[-1])  # the first model had no champion to beat
    assert all(d.proto.placeholder == "" for d in at.dataframe)  # shown blank, not "None"
    authors = table(at, "Login")
    assert "_" not in "".join(authors.columns)


def test_who_page_explains_the_rank(warehouse_home: Path) -> None:
    at = render("who")
    shown = metrics(at)
    assert shown == {"Life expectancy (2020)": "72.0 y", "Healthy life expectancy": "64.0 y",
                     "Change per decade": "+2.00 y", "Rank in EMR": "2 of 3"}  # Morocco gains fastest
    rank = next(m for m in at.metric if m.label == "Rank in EMR")
    assert "WHO region EMR (Eastern Mediterranean)" in rank.proto.help
    assert any("ranked by how fast life expectancy rose per decade: 1 is the fastest gain" in c.value
               for c in at.caption)
    ranks = table(at, "Rank")
    assert list(ranks["Country"]) == ["Morocco", "Egypt", "Jordan"]
    assert list(ranks.columns)[:3] == ["Rank", "Country", "Change per decade"]

    sidebar_widget(at, "selectbox", "Country").set_value("JOR").run()
    assert metrics(at)["Healthy life expectancy"] == "–"  # GHO gives Jordan none here


def test_orders_page_shows_daily_metrics_and_filters_by_date(warehouse_home: Path) -> None:
    at = render("orders")
    orders = sum(10 + i for i in range(1, 11))
    assert metrics(at) == {"Orders": "155", "Revenue": "7,750", "Avg order": "50.00", "Cancelled": "10",
                           "Refunded": "50.00"}
    assert next(m for m in at.metric if m.label == "Cancelled").delta == f"{10 / orders:.1%} of orders"
    daily = at.dataframe[0].value
    assert list(daily.columns) == ["Date", "Orders", "Revenue", "Avg order", "Customers", "Cancelled", "Refunded"]
    assert len(daily) == len(ORDER_DAYS)
    assert daily["Orders"].iloc[0] == 20  # newest day first

    sidebar_widget(at, "date_input", "Order dates").set_value((ORDER_DAYS[0], ORDER_DAYS[1])).run()
    assert metrics(at)["Orders"] == "23"
    assert metrics(at)["Refunded"] == "0.00"
    assert len(at.dataframe[0].value) == 2


def test_platform_page_shows_runs_checks_and_quarantine(warehouse_home: Path) -> None:
    at = render("platform")
    shown = metrics(at)
    assert shown["Runs"] == "2"
    assert shown["Failed runs"] == "1"
    assert shown["Latest run"] == "retail"  # the pipeline's whole name; its status under it
    assert next(m for m in at.metric if m.label == "Latest run").delta == "failed"
    assert shown["Quarantined batches"] == "1" and shown["Open quarantine items"] == "1"
    waiting = table(at, "Kept at")
    assert list(waiting["Item"]) == ["sales_2026-01-02.csv"] and list(waiting["Pipeline"]) == ["retail"]
    assert "not_null(store_id): 3 rows" in waiting["Failed rules"].iloc[0]
    assert any("lakebox quarantine dismiss" in w.value for w in at.warning)
    runs = table(at, "Run")
    assert list(runs.columns) == ["Run", "Pipeline", "Status", "Started", "Seconds", "Rows in", "Rows out", "Error"]
    assert dict(zip(runs["Run"], runs["Status"], strict=True)) == {"run-ok-1": "success", "run-bad-2": "failed"}
    assert runs["Run"].iloc[0] == "run-bad-2"  # newest first
    checks = table(at, "Times run")
    failing = checks[checks["Times failed"] > 0]
    assert set(zip(failing["Check"], failing["Column"], strict=True)) == {
        ("not_null", "store_id"), ("accepted_range", "quantity")}
    quarantined = table(at, "Lake path")
    assert list(quarantined["Batch"]) == ["batch-bad"]
    rules = quarantined["Failed rules"].iloc[0]
    assert "not_null(store_id): 3 rows — store_id is empty" in rules
    assert "accepted_range(quantity): 1 rows — quantity < 0" in rules
    assert any(e.label.endswith("batch-bad.csv.errors.json") for e in at.expander)
    assert any("No stages recorded" in c.value for c in at.caption)  # the failed run stopped before any stage
    assert all(d.proto.placeholder == "" for d in at.dataframe)  # missing values blank, not "None"

    at.selectbox[0].set_value("run-ok-1").run()
    stages = table(at, "Stage")
    assert list(stages["Stage"]) == ["ingest", "transform"]
    assert set(stages["Status"]) == {"success"}


def _add_runs(home: Path, count: int) -> None:
    """`count` more runs, a minute apart, newest last: every third `failed`, the rest `success`;
    pipelines alternate orders / retail."""
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("insert into ops.pipeline_runs (run_id, pipeline, status, started_at, duration_s) "
                "select 'run-many-' || lpad(cast(i as varchar), 3, '0'), "
                "case when i % 2 = 0 then 'orders' else 'retail' end, "
                "case when i % 3 = 0 then 'failed' else 'success' end, "
                "timestamp '2026-01-01 00:00:00' + to_minutes(cast(i as bigint)), 1.5 from range(1, ?) as t(i)",
                [count + 1])
    con.close()


def test_platform_pages_through_every_run_and_filters_by_pipeline_and_status(warehouse_home: Path) -> None:
    _add_runs(warehouse_home, 130)
    at = render("platform")
    assert metrics(at)["Runs"] == "132"
    runs = table(at, "Run")
    assert len(runs) == 50
    assert any(c.value == "Runs 1–50 of 132, newest first" for c in at.caption)

    page = next(n for n in at.number_input if n.key == "runs_page")
    assert page.label == "Page (of 3)"
    page.set_value(3).run()
    runs = table(at, "Run")
    assert len(runs) == 32  # 132 - 2 * 50
    assert runs["Run"].iloc[-1] == "run-many-001"  # the oldest of all is on the last page
    assert any(c.value == "Runs 101–132 of 132, newest first" for c in at.caption)

    sidebar_widget(at, "multiselect", "Pipeline").set_value(["orders"]).run()
    sidebar_widget(at, "multiselect", "Status").set_value(["failed"]).run()
    runs = table(at, "Run")
    expected = [f"run-many-{i:03d}" for i in range(130, 0, -1) if i % 2 == 0 and i % 3 == 0]
    assert list(runs["Run"]) == expected  # 21 runs: one page
    assert any(c.value == f"Runs 1–{len(expected)} of {len(expected)}, newest first" for c in at.caption)
    assert not any(n.key == "runs_page" for n in at.number_input)


def test_a_run_whose_process_was_killed_shows_as_interrupted(warehouse_home: Path) -> None:
    import os

    from lakebox.locks import exclusive
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    with open_warehouse(Settings.load()) as wh:
        wh.execute("insert into ops.pipeline_runs (run_id, pipeline, status, started_at) "
                   "values ('run-killed-3', 'orders', 'running', now())")
    child = os.fork()
    if child == 0:  # the run's process: takes its lock and dies without closing the run
        with exclusive(warehouse_home, "run-orders", "pipeline orders", note="run-killed-3"):
            os._exit(0)
    os.waitpid(child, 0)
    at = render("platform")
    runs = table(at, "Run")
    shown = dict(zip(runs["Run"], runs["Status"], strict=True))
    assert shown["run-killed-3"] == "interrupted" and shown["run-ok-1"] == "success"
    error = dict(zip(runs["Run"], runs["Error"], strict=True))["run-killed-3"]
    assert "process ended before the run finished" in error
    status = sidebar_widget(at, "multiselect", "Status")
    assert "interrupted" in status.options
    status.set_value(["interrupted"]).run()
    assert list(table(at, "Run")["Run"]) == ["run-killed-3"]


@pytest.mark.parametrize("empty_home", ["missing", "fresh"], indirect=True)
@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("retail", "No retail data yet — run `lakebox run retail`"),
        ("orders", "No order data yet — run `lakebox run orders`"),
        ("platform", "No pipeline runs yet — run `lakebox run`"),
    ],
)
def test_empty_warehouse_says_what_to_run(empty_home: Path, page: str, message: str,
                                          request: pytest.FixtureRequest) -> None:
    at = render(page)
    assert any(message in i.value for i in at.info), [i.value for i in at.info]
    assert not at.error
    assert not at.metric
    # The dashboard only reads: it never creates a warehouse or a lake.
    created = request.node.callspec.params["empty_home"] == "fresh"
    assert (empty_home / "warehouse.duckdb").exists() == created
    assert not (empty_home / "lake").exists()


def test_locked_warehouse_shows_a_clear_error(warehouse_home: Path) -> None:
    path = warehouse_home / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('locked', flush=True); "
                               "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        at = AppTest.from_file(str(APP), default_timeout=30).run()
        assert not at.exception
        assert len(at.error) == 1
        assert "is busy" in at.error[0].value and "Refresh data" in at.error[0].value
    finally:
        holder.communicate(timeout=10)  # closes stdin (the holder then exits) and its stdout


def test_results_are_cached_until_refresh_is_pressed(warehouse_home: Path) -> None:
    at = render("orders")
    assert metrics(at)["Orders"] == "155"
    con = duckdb.connect(str(warehouse_home / "warehouse.duckdb"))
    con.execute("update analytics.daily_order_metrics set total_orders = total_orders + 1")
    con.close()

    at.run()
    assert metrics(at)["Orders"] == "155"  # cached: page loads do not hit the warehouse
    next(b for b in at.sidebar.button if b.label == "Refresh data").click().run()
    assert metrics(at)["Orders"] == "165"
