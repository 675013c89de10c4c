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
from tests.dashboard.conftest import FIRST_DAY, LAST_DAY, ORDER_DAYS, STORES, expected_sales

PAGES = {"retail": "retail_page.py", "orders": "orders_page.py", "platform": "platform_page.py"}


def render(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    if page != "retail":
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def money(value: float) -> str:
    return f"{value:,.2f}"


def chart_data(at: AppTest, index: int) -> pd.DataFrame:
    """The rows a chart draws (Streamlit ships them to the browser as Arrow)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    proto = at.get("vega_lite_chart")[index].proto
    return convert_arrow_bytes_to_pandas_df(proto.datasets[0].data.data)


def table(at: AppTest, column: str) -> pd.DataFrame | None:
    """The first table on the page that has `column`, or None."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def sidebar_widget(at: AppTest, kind: str, label: str):  # noqa: ANN201
    return next(w for w in getattr(at.sidebar, kind) if w.label == label)


def test_retail_shows_kpis_for_all_stores_and_dates(warehouse_home: Path) -> None:
    at = render("retail")
    sales, transactions = expected_sales(list(STORES), FIRST_DAY, LAST_DAY)
    assert metrics(at) == {
        "Total sales": f"{sales:,.0f}",
        "Transactions": f"{transactions:,}",
        "Avg basket": money(sales / transactions),
        "Stores": "4",
        "Est. lost sales (stockouts)": "1,500",
    }
    insights = table(at, "insight")
    assert list(insights["severity"]) == ["high", "medium", "low"]
    assert list(insights["store_id"]) == ["S004", "S001", "S003"]
    assert "Grocery ran out on 6 days" in insights["insight"].iloc[0]
    promotions = table(at, "promo_id")
    assert list(promotions["promo_id"]) == ["P1", "P2", "P3"]  # best lift first
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
    assert shown["Total sales"] == f"{sales:,.0f}"
    assert shown["Transactions"] == f"{transactions:,}"
    assert shown["Stores"] == "2"
    assert shown["Est. lost sales (stockouts)"] == "300"
    assert list(table(at, "insight")["store_id"]) == ["S001"]  # only North's insight
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
    assert table(at, "insight") is None  # S002 has no insight
    assert any("No insights for these filters" in i.value for i in at.info)
    assert table(at, "promo_id").empty  # P3 (S002) runs 20–26 Jan, outside 3–4 Jan
    assert list(table(at, "stockout_days")["category"]) == ["beverages"]
    assert list(chart_data(at, 0)["total_sales"]) == [2500, 2500]


def test_retail_insight_severity_filter(warehouse_home: Path) -> None:
    at = render("retail")
    at.pills(key="insight_severity").set_value(["high"]).run()
    assert list(table(at, "insight")["severity"]) == ["high"]


def test_orders_page_shows_daily_metrics_and_filters_by_date(warehouse_home: Path) -> None:
    at = render("orders")
    orders = sum(10 + i for i in range(1, 11))
    assert metrics(at) == {
        "Orders": f"{orders:,}",
        "Revenue": money(orders * 50),
        "Avg order": money(50),
        "Cancelled": f"10 ({10 / orders:.1%})",
        "Refunded": money(50),
    }
    table = at.dataframe[0].value
    assert len(table) == len(ORDER_DAYS)
    assert table["total_orders"].iloc[0] == 20  # newest day first

    sidebar_widget(at, "date_input", "Order dates").set_value((ORDER_DAYS[0], ORDER_DAYS[1])).run()
    assert metrics(at)["Orders"] == "23"
    assert metrics(at)["Refunded"] == money(0)
    assert len(at.dataframe[0].value) == 2


def test_platform_page_shows_runs_checks_and_quarantine(warehouse_home: Path) -> None:
    at = render("platform")
    shown = metrics(at)
    assert shown["Runs shown"] == "2"
    assert shown["Failed runs"] == "1"
    assert shown["Quarantined batches"] == "1" and shown["Open quarantine items"] == "1"
    waiting = table(at, "quarantine_path")
    assert list(waiting["item"]) == ["sales_2026-01-02.csv"] and list(waiting["pipeline"]) == ["retail"]
    assert "not_null(store_id): 3 rows" in waiting["failed_rules"].iloc[0]
    assert any("lakebox quarantine dismiss" in w.value for w in at.warning)
    runs = table(at, "run_id")
    assert set(runs["run_id"]) == {"run-ok-1", "run-bad-2"}
    assert dict(zip(runs["run_id"], runs["status"], strict=True)) == {"run-ok-1": "success", "run-bad-2": "failed"}
    assert runs["run_id"].iloc[0] == "run-bad-2"  # newest first
    checks = table(at, "checks")
    failing = checks[checks["failed"] > 0]
    assert set(zip(failing["check_name"], failing["column_name"], strict=True)) == {
        ("not_null", "store_id"), ("accepted_range", "quantity")}
    quarantined = table(at, "lake_path")
    assert list(quarantined["batch_id"]) == ["batch-bad"]
    rules = quarantined["failed_rules"].iloc[0]
    assert "not_null(store_id): 3 rows — store_id is empty" in rules
    assert "accepted_range(quantity): 1 rows — quantity < 0" in rules
    assert any(e.label.endswith("batch-bad.csv.errors.json") for e in at.expander)
    assert any("No stages recorded" in c.value for c in at.caption)  # the failed run stopped before any stage

    at.selectbox[0].set_value("run-ok-1").run()
    stages = table(at, "stage")
    assert list(stages["stage"]) == ["ingest", "transform"]
    assert set(stages["status"]) == {"success"}


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
    runs = table(render("platform"), "run_id")
    shown = dict(zip(runs["run_id"], runs["status"], strict=True))
    assert shown["run-killed-3"] == "interrupted" and shown["run-ok-1"] == "success"
    error = dict(zip(runs["run_id"], runs["error"], strict=True))["run-killed-3"]
    assert "process ended before the run finished" in error


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
