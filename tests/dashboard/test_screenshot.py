"""The real thing: `lakebox dashboard` as a user starts it, looked at by headless Chromium.

Streamlit renders in the browser over a websocket, which Chromium's virtual time does not
wait for, so the test drives Chromium over the DevTools protocol: it waits (bounded) until
the KPIs and charts are in the page, then captures the screenshot.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from lakebox.ports import free_port
from tests.dashboard.conftest import FIRST_DAY, LAST_DAY, STORES, expected_sales

WIDTH, HEIGHT = 1400, 1000
SIDEBAR_WIDTH = 330  # the main area starts right of it at this window width

# Resolves with the page's text once every KPI and chart is drawn and the script is idle.
_RENDERED = """new Promise((resolve, reject) => {
  const deadline = Date.now() + %d;
  const check = () => {
    const metrics = document.querySelectorAll('[data-testid="stMetric"]').length;
    const charts = document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length;
    const running = document.querySelector('[data-testid="stStatusWidgetRunningIcon"]');
    if (metrics >= 5 && charts >= 5 && !running) { resolve(document.body.innerText); return; }
    if (Date.now() > deadline) { reject(new Error(`not rendered: ${metrics} metrics, ${charts} charts`)); return; }
    setTimeout(check, 100);
  };
  check();
})"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "Chromium is not installed (Debian: apt-get install -y chromium); the screenshot test needs it"
    if os.environ.get("CI") == "true" or os.environ.get("LAKEBOX_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"CI=true or LAKEBOX_REQUIRE_CHROMIUM=1, but {reason}")
    pytest.skip(reason)


@contextmanager
def _dashboard(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`lakebox dashboard --port PORT` through the real CLI, until it answers /_stcore/health."""
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "lakebox.cli", "dashboard", "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(600):  # at most ~60 s
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            try:
                server.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"lakebox dashboard exited with {server.returncode}:\n{log.read_text()}")
        else:
            pytest.fail(f"lakebox dashboard did not answer on port {port} within 60 s:\n{log.read_text()}")
        yield server
    finally:
        server.terminate()  # the CLI forwards SIGTERM to Streamlit
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


class _DevTools:
    """Just enough of the Chrome DevTools protocol: send a command, wait for its answer."""

    def __init__(self, ws: Any, session: str | None = None) -> None:
        self.ws, self.session, self._id = ws, session, 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply["result"]


def _screenshot(chromium: str, url: str, profile: Path, wait_ms: int = 45_000) -> tuple[bytes, str]:
    """(PNG, page text) of `url` once the dashboard has rendered."""
    from websockets.sync.client import connect

    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert browser.stderr is not None
        endpoint = next((line.split(" on ", 1)[1].strip() for line in browser.stderr
                         if line.startswith("DevTools listening on ")), None)
        assert endpoint, f"Chromium exited ({browser.wait()}) without opening DevTools"
        with connect(endpoint, max_size=None) as ws:
            browser_tools = _DevTools(ws)
            target = browser_tools.call("Target.createTarget", url="about:blank")["targetId"]
            page = _DevTools(ws, browser_tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
            page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1,
                      mobile=False)
            page.call("Page.navigate", url=url)
            result = page.call("Runtime.evaluate", expression=_RENDERED % wait_ms, awaitPromise=True,
                               returnByValue=True)
            if "exceptionDetails" in result:
                shot = page.call("Page.captureScreenshot", format="png")
                Path(profile, "failed.png").write_bytes(base64.b64decode(shot["data"]))
                raise AssertionError(f"the dashboard did not render at {url}: "
                                     f"{result['exceptionDetails'].get('exception', {}).get('description')} "
                                     f"(screenshot: {profile / 'failed.png'})")
            text = result["result"]["value"]
            png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        return png, text
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        if browser.stderr is not None:
            browser.stderr.close()


@pytest.mark.timeout(180)
def test_dashboard_renders_in_a_real_browser(warehouse_home: Path, lakebox_env: dict[str, str],
                                             tmp_path: Path) -> None:
    chromium = _chromium()
    port = free_port()
    log = tmp_path / "dashboard.log"
    with _dashboard(dict(os.environ), port, log) as server:
        png, text = _screenshot(chromium, f"http://127.0.0.1:{port}/", tmp_path / "chromium-profile")
        assert server.poll() is None, log.read_text()
    (tmp_path / "dashboard.png").write_bytes(png)
    assert f"http://127.0.0.1:{port}/" in log.read_text()  # the CLI says where to look

    sales, transactions = expected_sales(list(STORES), FIRST_DAY, LAST_DAY)
    for shown in ("Retail", "Total sales", f"{sales:,.0f}", f"{transactions:,}", "Daily sales by region",
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
        _chromium()
