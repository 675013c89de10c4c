"""The declarative page in the real dashboard (`lakebox dashboard` through the CLI), looked at
by headless Chromium at 1400 and 1000 px: each pipeline at its own url, whole KPIs, its
charts drawn, human column headers. Screenshots are kept in $LAKEBOX_SCREENSHOTS when set."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lakebox.pipelines import PATH_ENV
from lakebox.ports import free_port
from tests.conftest import _LAKEBOX_VARS
from tests.dashboard.browser import Page, browser, chromium, dashboard
from tests.dashboard.test_layout import _CUT_KPIS, _DEPLOY, _HEADING
from tests.declarative.page_setup import AIR, RIVER, record_ops, register_champion, write_pipelines

HEIGHT = 3600  # tall, so a screenshot holds the whole page
# (url path, heading, KPIs, charts, a text the page must show)
PAGES = [(AIR, "Air Quality", 8, 1, "Daily PM2.5 readings per city"),
         (RIVER, "River Levels", 4, 1, "Hourly river levels")]
# Column headers of every table as the grid draws them (its header cells are in the DOM).
_HEADERS = """[...document.querySelectorAll('.stDataFrame [role="columnheader"]')].map(e => e.innerText.trim())"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    from lakebox.settings import Settings

    root = tmp_path / "project"
    with pytest.MonkeyPatch.context() as patch:
        for name in _LAKEBOX_VARS:
            patch.delenv(name, raising=False)
        patch.setenv("LAKEBOX_HOME", str(root / "home"))
        patch.setenv(PATH_ENV, str(write_pipelines(root)))
        patch.chdir(root)
        settings = Settings.load()
        record_ops(settings)
        register_champion(settings, root)
        yield dict(os.environ)


def _ready(kpis: int, charts: int) -> str:
    return (f"document.querySelectorAll('[data-testid=\"stMetricValue\"]').length >= {kpis} && "
            f"document.querySelectorAll('.vega-embed').length >= {charts}")


def _look(page: Page, base: str, path: str, heading: str, kpis: int, charts: int, text: str) -> list[str]:
    shown = page.open(f"{base}/{path}", _ready(kpis, charts))
    png = page.screenshot(f"declarative-{path}").read_bytes()
    problems = [f"/{path}: KPI {c['label']!r}: its {c['part']} {c['value']!r} is cut off "
                f"({c['scroll']} px in {c['client']} px)" for c in page.evaluate(_CUT_KPIS)]
    if page.evaluate(_HEADING) != heading:
        problems.append(f"/{path} opened {page.evaluate(_HEADING)!r}, not {heading!r}")
    if text not in shown:
        problems.append(f"/{path}: {text!r} is not on the page")
    if "Page not found" in shown or "Traceback" in shown:
        problems.append(f"/{path}: an error instead of the page:\n{shown[:500]}")
    if page.evaluate(_DEPLOY):
        problems.append(f"/{path}: a Deploy button")
    headers = page.evaluate(_HEADERS) or []
    problems += [f"/{path}: table header {h!r} is a column's raw name" for h in headers if "_" in h]
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    blue = ((image[..., 2] - image[..., 0] > 80) & (image[..., 2] > 150)).sum()
    if blue < 500:
        problems.append(f"/{path}: only {blue} chart-blue pixels: its chart did not draw")
    return problems


@pytest.mark.timeout(300)
def test_each_declarative_pipeline_has_its_page_whole_at_1400_and_1000_px(env: dict[str, str],
                                                                          tmp_path: Path) -> None:
    chromium()
    port = free_port()
    problems = []
    with dashboard(env, port, tmp_path / "dashboard.log"):  # one server, looked at by a browser per width
        for width in (1400, 1000):
            (tmp_path / str(width)).mkdir()
            with browser(tmp_path / str(width), width, HEIGHT) as page:
                problems += [f"{width} px: {p}" for path, heading, kpis, charts, text in PAGES
                             for p in _look(page, f"http://127.0.0.1:{port}", path, heading, kpis, charts, text)]
    assert not problems, "\n".join(problems)
