"""Every page in headless Chromium at 1400 and 1000 px wide, read through the DOM: no KPI
value cut off with "…", no Deploy button, each page at its own URL (`/retail` too)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakebox.ports import free_port
from tests.dashboard.browser import Page, browser, chromium, dashboard

HEIGHT = 3200  # tall, so the screenshots show (nearly) the whole page
PAGES = [  # (url path, title, KPIs the page shows)
    ("", "Retail", 5),
    ("retail", "Retail", 5),
    ("orders", "Orders", 5),
    ("github_commits", "GitHub commits", 9),
    ("who_gho", "WHO life expectancy", 4),
    ("platform", "Platform", 5),
]

# Every KPI value or label whose text is wider than its box (the browser then draws "…").
_CUT_KPIS = """[...document.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricLabel"]')]
  .flatMap(part => [part, ...part.querySelectorAll('*')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 || /…/.test(e.innerText)).slice(0, 1).map(e => ({
      part: part.dataset.testid === 'stMetricValue' ? 'value' : 'label',
      label: part.closest('[data-testid="stMetric"]').querySelector('[data-testid="stMetricLabel"]').innerText,
      value: part.innerText, scroll: e.scrollWidth, client: e.clientWidth})))"""
_HEADING = "document.querySelector('h1') ? document.querySelector('h1').innerText : ''"
_DEPLOY = """[...document.querySelectorAll('[data-testid="stAppDeployButton"], button')]
  .filter(e => e.dataset.testid === 'stAppDeployButton' || e.innerText.trim() === 'Deploy').length"""


def _ready(kpis: int) -> str:
    return f"document.querySelectorAll('[data-testid=\"stMetricValue\"]').length >= {kpis}"


def _look(page: Page, base: str, path: str, title: str, kpis: int) -> list[str]:
    """What is wrong with one page at this width, in words."""
    text = page.open(f"{base}/{path}", _ready(kpis))
    page.screenshot(path or "root")
    problems = [f"/{path}: KPI {c['label']!r}: its {c['part']} {c['value']!r} is cut off "
                f"({c['scroll']} px in {c['client']} px)"
                for c in page.evaluate(_CUT_KPIS)]
    heading = page.evaluate(_HEADING)
    if heading != title:
        problems.append(f"/{path} opened {heading!r}, not {title!r}")
    if "Page not found" in text:
        problems.append(f"/{path}: 'Page not found'")
    if page.evaluate(_DEPLOY):
        problems.append(f"/{path}: a Deploy button")
    return problems


@pytest.mark.timeout(300)
@pytest.mark.parametrize("width", [1400, 1000])
def test_every_page_reads_whole_at_this_width(width: int, warehouse_home: Path, tmp_path: Path) -> None:
    chromium()
    port = free_port()
    with dashboard(dict(os.environ), port, tmp_path / "dashboard.log"), browser(tmp_path, width, HEIGHT) as page:
        problems = [p for path, title, kpis in PAGES for p in _look(page, f"http://127.0.0.1:{port}", path, title, kpis)]
    assert not problems, "\n".join(problems)
