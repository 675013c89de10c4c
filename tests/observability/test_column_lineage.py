"""Column lineage from dbt's compiled SQL: exact for a hand-checked mart, printed by
`lakebox lineage COLUMN`, carried in the run's events, cached by checksum."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lakebox.observability.lineage.datasets import compiled_in
from lakebox.observability.lineage.sql_cache import SqlCache
from tests.conftest import _LAKEBOX_VARS, run_cli

MART = "analytics.daily_order_metrics"
PAGE = Path(__file__).resolve().parents[2] / "src" / "lakebox" / "observability" / "catalog_page.py"
STG = "staging.stg_orders"
# Read off models/orders/marts/daily_order_metrics.sql and staging/stg_orders.sql by hand.
EXPECTED_MART = {
    "order_date": [[STG, "order_date", "IDENTITY"]],
    "total_orders": [],  # count(*): no column of its own, only the grouping
    "total_amount": [[STG, "amount", "AGGREGATION"]],
    "avg_amount": [[STG, "amount", "AGGREGATION"]],
    "unique_customers": [[STG, "customer_id", "AGGREGATION"]],
    "cancelled_orders": [[STG, "status", "AGGREGATION"]],
    "refunded_amount": [[STG, "amount", "AGGREGATION"], [STG, "status", "AGGREGATION"]],
    "_last_ingested_at": [[STG, "_ingested_at", "AGGREGATION"]],
}


@pytest.fixture(scope="module")
def orders_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("orders")
    env = {k: v for k, v in os.environ.items() if k not in _LAKEBOX_VARS}
    env.update(LAKEBOX_HOME=str(root / "home"), LAKEBOX_DEMO_ORDERS="200", LAKEBOX_CONFIG="off", PWD=str(root))
    result = run_cli("run", "orders", env=env)
    assert result.returncode == 0, result.stderr
    return root / "home", env


def mart_event(home: Path) -> dict:
    events = [json.loads(line) for line in (home / "lineage" / "events.jsonl").read_text().splitlines()]
    [event] = [e for e in events if e["job"]["name"] == f"orders.transform.{MART}" and e["eventType"] == "COMPLETE"]
    return event


def test_the_marts_column_lineage_is_exact(orders_home: tuple[Path, dict[str, str]]) -> None:
    home, _ = orders_home
    [out] = mart_event(home)["outputs"]
    facet = out["facets"]["columnLineage"]
    got = {col: sorted([f["name"], f["field"], f["transformations"][0]["subtype"]] for f in v["inputFields"])
           for col, v in facet["fields"].items()}
    assert got == {c: v for c, v in EXPECTED_MART.items() if v}
    assert all(f["transformations"][0]["type"] == "DIRECT" for v in facet["fields"].values() for f in v["inputFields"])
    assert [(d["name"], d["field"], d["transformations"][0]) for d in facet["dataset"]] == [
        (STG, "order_date", {"type": "INDIRECT", "subtype": "GROUP_BY", "masking": False})]


def test_lineage_column_prints_the_chain_down_to_the_raw_table(orders_home: tuple[Path, dict[str, str]]) -> None:
    home, env = orders_home
    up = run_cli("lineage", f"{MART}.total_amount", env=env)
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines() == [
        f"{MART}.total_amount", "upstream:",
        f"  <- {STG}.amount  [AGGREGATION]",
        "    <- raw.orders.amount  [TRANSFORMATION]",
        f"  (every row) {STG}.order_date  [GROUP_BY]",
        "downstream:"]
    down = run_cli("lineage", "raw.orders.created_at", env=env)
    assert down.stdout.splitlines()[-3:] == [
        f"  -> {STG}.created_at  [IDENTITY]",
        f"  -> {STG}.order_date  [TRANSFORMATION]",
        f"    -> {MART}.order_date  [IDENTITY]"]
    wrong = run_cli("lineage", "raw.orders", env=env)
    assert wrong.returncode == 2 and "schema.table.column" in wrong.stderr


def test_cached_lineage_needs_no_parse(orders_home: tuple[Path, dict[str, str]]) -> None:
    """Column lineage of every built model from the cache: sqlglot not even imported (best of
    three, as the machine is shared)."""
    home, env = orders_home
    script = (
        "import sys, time; from lakebox.settings import Settings; from lakebox.warehouse import open_warehouse\n"
        "from lakebox.observability.lineage.columns import column_graph\n"
        "s = Settings.load(); wh = open_warehouse(s); took = []\n"
        "for _ in range(3): t0 = time.perf_counter(); g = column_graph(s, wh); took.append(time.perf_counter() - t0)\n"
        "print(round(min(took), 3), 'sqlglot' in sys.modules, len(g.upstream))")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                         cwd=env["PWD"]).stdout.split()
    seconds, imported, edges = float(out[0]), out[1], int(out[2])
    assert imported == "False" and edges > 10
    assert seconds < 0.1, f"cached column lineage took {seconds} s"


def test_sql_sqlglot_cannot_parse_gives_table_level_nothing_and_a_warning_naming_the_model(
        tmp_path: Path) -> None:
    models = tmp_path / "models" / "shop" / "marts"
    models.mkdir(parents=True)
    (models / "broken.sql").write_text("select from from where ((")
    (models / "fine.sql").write_text('select a from "warehouse"."staging"."stg_shop"')
    warnings: list[str] = []

    class Log:
        def warning(self, msg: str, **fields: object) -> None:
            warnings.append(msg)

    found = compiled_in(tmp_path / "models", None, SqlCache(tmp_path / "sql.json"), Log())
    assert [(m.name, m.reads) for m in found] == [("analytics.broken", ()), ("analytics.fine", ("staging.stg_shop",))]
    assert warnings == ["lineage: sqlglot cannot parse model analytics.broken; it gets no table or column lineage"]


def test_the_catalog_export_opens_offline_and_every_link_resolves(
        orders_home: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    import re
    import shutil

    home, env = orders_home
    site = tmp_path / "site"
    result = run_cli("catalog", "--export", str(site), env=env)
    assert result.returncode == 0, result.stderr
    pages = {p.name: p.read_text() for p in site.glob("*.html")}
    assert set(pages) == {"index.html", "raw.orders.html", f"{STG}.html", f"{MART}.html"}
    for name, text in pages.items():
        for target, anchor in re.findall(r"href='([^'#]+)(?:#([^']+))?'", text):
            assert target in pages, f"{name} links to a missing page {target}"
            assert not anchor or f"id='{anchor}'" in pages[target], f"{name} links to {target}#{anchor}"
    mart = pages[f"{MART}.html"]
    assert f"<a href='{STG}.html#amount'>{STG}.amount</a> (AGGREGATION)" in mart
    assert "schema_drift" in pages["raw.orders.html"], "the gate's latest checks of the raw table"
    assert "Rows per run" in mart

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          (site / "index.html").as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert f'<a href="{MART}.html">{MART}</a>' in dom


def test_the_catalog_page_opens_a_dataset_and_clicks_through_its_lineage(
        orders_home: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    _, env = orders_home
    for name in _LAKEBOX_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in ("LAKEBOX_HOME", "LAKEBOX_CONFIG"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.chdir(env["PWD"])
    app = AppTest.from_file(str(PAGE), default_timeout=60)
    app.query_params["dataset"] = STG
    app.run()
    assert not app.exception, app.exception
    assert app.header[0].value == STG
    assert "Typed orders, the latest version of each." in [m.value for m in app.markdown]
    assert {m.label: m.value for m in app.metric}["Pipeline"] == "orders"
    [tests] = [t.value for t in app.table if "Latest result" in t.value.columns]
    assert set(tests["Latest result"]) == {"passed"}
    [listed] = [t.value for t in app.table if "Dataset" in t.value.columns]
    assert list(listed["Dataset"]) == ["analytics.daily_order_metrics", "raw.orders", STG]
    assert ("not_null", "amount") in set(zip(tests["Test"], tests["Column"], strict=True))
    [upstream] = [b for b in app.button if b.label == "raw.orders" and b.key.startswith("up:")]
    upstream.click().run()
    assert app.header[0].value == "raw.orders"
    assert app.query_params["dataset"] in ("raw.orders", ["raw.orders"])
    [checks] = [d.value for d in app.dataframe if "Check" in d.value.columns]
    assert "schema_drift" in set(checks["Check"]), "the gate's latest checks of the raw table"
    [down] = [b for b in app.button if b.key == f"down:{STG}"]
    down.click().run()
    [down] = [b for b in app.button if b.key == f"down:{MART}"]
    down.click().run()
    assert app.header[0].value == MART
    assert {m.label: m.value for m in app.metric}["Rows (last run)"] not in ("–", "")
    graphs = [e.proto.spec for e in app.get("graphviz_chart")]
    assert any(f'"{STG}" -> "{MART}"' in g for g in graphs), graphs


@contextmanager
def catalog_server(env: dict[str, str], folder: Path) -> Iterator[int]:
    """The catalog page in Streamlit as the dashboard registers it (a wide page among others)."""
    import httpx

    from lakebox.ports import free_port

    app = folder / "app.py"
    app.write_text("import streamlit as st\n"
                   "st.set_page_config(page_title='lakebox', layout='wide')\n"
                   f"st.navigation([st.Page({str(PAGE)!r}, title='Catalog', url_path='catalog')]).run()\n")
    port = free_port()
    log = folder / "streamlit.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
                                   "--server.address", "127.0.0.1", "--server.headless", "true",
                                   "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, cwd=env["PWD"])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"streamlit did not answer within 60 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=15)


CUT_SHORT = ("[...document.querySelectorAll('[data-testid=\"stMetricValue\"] *, [data-testid=\"stTable\"] td, "
             "button p')].filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)")


@pytest.mark.timeout(240)
def test_the_catalog_page_renders_in_chromium_at_1400_and_1000_px(
        orders_home: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    from tests.dashboard.browser import browser, chromium

    chromium()
    _, env = orders_home
    ready = ("document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 6 && "
             "document.querySelectorAll('[data-testid=\"stGraphVizChart\"] svg').length >= 2")
    with catalog_server(env, tmp_path) as port:
        for width in (1400, 1000):
            with browser(tmp_path, width, 1000) as page:
                text = page.open(f"http://127.0.0.1:{port}/?dataset={MART}", ready)
                page.screenshot("catalog")
                for shown in (MART, "Upstream", STG, "total_amount", "Row counts and freshness",
                              "Comes from", "not_null"):
                    assert shown in text, f"{shown!r} is not on the page at {width} px"
                assert page.evaluate(CUT_SHORT) == [], f"values cut short at {width} px"
                nodes = page.evaluate("[...document.querySelectorAll('[data-testid=\"stGraphVizChart\"] svg "
                                      "g.node title')].map(t => t.textContent)")
                assert {STG, MART, "raw.orders"} <= set(nodes), nodes


def test_the_lineage_bench_times_cold_then_cached_and_reports_the_targets(
        orders_home: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    from lakebox.bench.lineage import section, targets

    _, env = orders_home
    env = {**env, "LAKEBOX_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-m", "lakebox.bench.lineage", "measure"], env=env, capture_output=True,
                           text=True, check=True, cwd=env["PWD"]).stdout for _ in range(2)]
    cold, cached = (json.loads(r.splitlines()[-1]) for r in runs)
    assert cold["models"] == cached["models"] == 2 and cold["edges"] == cached["edges"] > 10
    assert cold["first"] > cached["first"], "the first process parsed; the second read the cache"
    result = {"models": 2, "unknown_columns": cold["unknown_columns"], "edges": cold["edges"], "cold": cold["first"],
              "cached": cached["best"], "cached_first": cached["first"], "cached_calls": cached["calls"]}
    rows = targets(result)
    assert [r[0] for r in rows] == ["column lineage of every bundled model (2) ≤ 2 s cold",
                                    "column lineage of every bundled model (2) ≤ 0.1 s cached"]
    assert rows[1][2] == "yes", rows
    assert section(result)[0] == "## Column lineage of every bundled model"
