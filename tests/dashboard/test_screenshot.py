"""The real thing: `lakebox dashboard` as a user starts it, looked at by headless Chromium
(driven over the DevTools protocol, see browser.py) once the KPIs and charts are drawn."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lakebox.dashboard.formats import compact, money
from lakebox.ports import free_port
from tests.dashboard.browser import browser, chromium, dashboard
from tests.dashboard.conftest import FIRST_DAY, LAST_DAY, STORES, expected_sales

WIDTH, HEIGHT = 1400, 1000
SIDEBAR_WIDTH = 330  # the main area starts right of it at this window width
RETAIL_READY = ("document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 5 && "
                "document.querySelectorAll('.vega-embed').length >= 5")


@pytest.mark.timeout(180)
def test_dashboard_renders_in_a_real_browser(warehouse_home: Path, lakebox_env: dict[str, str],
                                             tmp_path: Path) -> None:
    chromium()
    port = free_port()
    log = tmp_path / "dashboard.log"
    with dashboard(dict(os.environ), port, log) as server, browser(tmp_path, WIDTH, HEIGHT) as page:
        text = page.open(f"http://127.0.0.1:{port}/", RETAIL_READY)
        png = page.screenshot("dashboard").read_bytes()
        assert server.poll() is None, log.read_text()
    assert f"http://127.0.0.1:{port}/" in log.read_text()  # the CLI says where to look

    sales, transactions = expected_sales(list(STORES), FIRST_DAY, LAST_DAY)
    for shown in ("Retail", "Total sales", money(sales), compact(transactions), "Daily sales by region",
                  "Promotion lift by category", "Orders", "Platform"):
        assert shown in text, f"{shown!r} is not on the page"

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert image.shape == (HEIGHT, WIDTH, 3)
    main = image[:, SIDEBAR_WIDTH:]
    ink = (main.min(axis=2) < 200).mean()
    assert ink > 0.02, f"the main area is almost blank ({ink:.1%} ink)"
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    assert colours > 500, f"only {colours} distinct colours: nothing much was drawn"
    r, b = main[..., 0], main[..., 2]
    chart_blue = ((b - r > 80) & (b > 150)).sum()
    assert chart_blue > 1000, f"only {chart_blue} chart-blue pixels: the charts did not draw"


@pytest.mark.parametrize(("env", "outcome"), [({"CI": "true"}, "fail"), ({"LAKEBOX_REQUIRE_CHROMIUM": "1"}, "fail"),
                                              ({}, "skip")])
def test_missing_chromium_fails_in_ci_and_skips_elsewhere(env: dict[str, str], outcome: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LAKEBOX_REQUIRE_CHROMIUM", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="apt-get install -y chromium"):
        chromium()
