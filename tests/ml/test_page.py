"""The Models page over a real DuckDB warehouse: alias history from ml.model_decisions,
shadow agreement and canary split from ml.online_predictions (rows written by the server's
own writer), live quality once ml.model_performance exists; and in headless Chromium at 1400
and 1000 px, nothing cut."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from lakebox.dashboard import APP
from lakebox.ml import tables
from lakebox.ml.serving import online_log
from lakebox.ports import free_port

PAGE = Path(APP).with_name("models_page.py")
MODEL = "commit-classifier"

DECISIONS = [  # version, decision, value, reason, decided_at, run_id, from_version, decided_by
    ("1", "champion", 0.61, "first model", "2026-01-20 06:00:00", "r1", None, "rule"),
    ("2", "rejected", 0.58, "not better by 0.01", "2026-01-27 06:00:00", "r2", None, "rule"),
    ("3", "champion", 0.6543, "better by 0.0443", "2026-02-03 06:00:00", "r3", "1", "rule"),
    ("4", "challenger", 0.65, "not better by 0.01", "2026-02-04 06:00:00", "r4", None, "rule"),
    ("1", "champion", 0.61, "v3 mislabels merges", "2026-02-05 09:30:00", None, "3", "ana"),
    ("3", "champion", 0.6543, "merges fixed upstream", "2026-02-06 10:00:00", None, "1", "ana"),
]


def _online(request: str, version: str, role: str, said: list[str]) -> pa.Table:
    return online_log.rows(request, MODEL, version, role, pa.array(said, pa.string()), 2.5)


@pytest.fixture
def models_home(lakebox_env: dict[str, str]) -> Path:
    """A warehouse with six decisions on the commit classifier; 8 requests of 2 rows shadowed
    (12 of 16 answers the same) and 4 more answered by the canary."""
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    with open_warehouse(settings) as wh:
        tables.ensure_added(wh, tables.MODEL_DECISIONS)
        rows = pa.table({
            "model_name": [MODEL] * len(DECISIONS), "version": [d[0] for d in DECISIONS],
            "decision": [d[1] for d in DECISIONS], "metric": ["f1_macro"] * len(DECISIONS),
            "value": [d[2] for d in DECISIONS], "champion_value": pa.nulls(len(DECISIONS), pa.float64()),
            "reason": [d[3] for d in DECISIONS],
            "decided_at": pa.array([d[4] for d in DECISIONS]).cast(pa.timestamp("us")),
            "run_id": pa.array([d[5] for d in DECISIONS], pa.string()),
            "from_version": pa.array([d[6] for d in DECISIONS], pa.string()),
            "decided_by": [d[7] for d in DECISIONS]})
        tables.append(wh, tables.MODEL_DECISIONS, rows)
        served = []
        for i in range(8):
            served.append(_online(f"r{i}", "3", "champion", ["feat", "fix"]))
            served.append(_online(f"r{i}", "4", "challenger", ["feat", "fix" if i < 4 else "docs"]))
        served += [_online(f"c{i}", "4", "canary", ["docs"]) for i in range(4)]
        out = pa.concat_tables(served)
        tables.ensure_like(wh, online_log.TABLE, out.schema)
        tables.append(wh, online_log.TABLE, out)
    return settings.home


def _render() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    at.switch_page(str(PAGE)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_page_shows_history_shadow_and_canary(models_home: Path) -> None:
    import streamlit as st

    st.cache_data.clear()
    at = _render()
    assert at.title[0].value == "Models"
    assert {m.label: m.value for m in at.metric} == {
        "Champion": "v3", "Holdout f1_macro": "0.654", "Alias moves": "6", "Shadow agreement": "75.0%",
        "Canary share": "33.3%"}
    infos = " ".join(i.value for i in at.info)
    assert "No live labels yet" in infos
    timeline = [c for c in at.get("vega_lite_chart")]
    assert len(timeline) == 3  # alias history, shadow agreement, canary split


def test_live_quality_is_drawn_once_labels_arrive(models_home: Path) -> None:
    import streamlit as st

    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    with open_warehouse(Settings.load()) as wh:
        wh.execute("create table ml.model_performance as select 'commit-classifier' as model_name, '3' as "
                   "model_version, date '2026-02-06' + cast(i as integer) as day, 'f1_macro' as metric, "
                   "0.6 + i / 100.0 as value from range(0, 5) as t(i)")
    st.cache_data.clear()
    at = _render()
    assert "No live labels yet" not in " ".join(i.value for i in at.info)
    assert len(at.get("vega_lite_chart")) == 4


def test_an_empty_warehouse_says_what_to_do(lakebox_env: dict[str, str]) -> None:
    import streamlit as st

    st.cache_data.clear()
    at = _render()
    assert "No model decisions yet" in at.info[0].value


@pytest.mark.timeout(300)
def test_the_page_reads_whole_at_1400_and_1000_px(models_home: Path, tmp_path: Path) -> None:
    from tests.dashboard.browser import browser, chromium, dashboard
    from tests.dashboard.test_layout import _look

    chromium()
    port = free_port()
    problems: list[str] = []
    with dashboard(dict(os.environ), port, tmp_path / "dashboard.log"):
        for width in (1400, 1000):
            with browser(tmp_path, width, 2200) as page:
                problems += [f"{width} px: {p}" for p in _look(page, f"http://127.0.0.1:{port}", "models", "Models", 5)]
                cut = page.evaluate("[...document.querySelectorAll('.vega-embed')].filter("
                                    "e => e.scrollWidth > e.clientWidth + 1).length")
                if cut:
                    problems.append(f"{width} px: {cut} chart(s) wider than their box")
    assert not problems, "\n".join(problems)
