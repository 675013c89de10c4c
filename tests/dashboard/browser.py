"""The real dashboard in headless Chromium: `lakebox dashboard` started through the CLI, and
Chromium driven over the DevTools protocol (the `websockets` client Streamlit depends on).

Streamlit renders in the browser over a websocket, which Chromium's virtual time does not
wait for, so pages are read once a condition holds in the page (polled, with a deadline).
Set LAKEBOX_SCREENSHOTS to a folder to keep every screenshot the tests take there.
"""

from __future__ import annotations

import base64
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
import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")

# Resolves once the script is idle, no element is still loading (a skeleton) and every chart and
# table is drawn, two checks in a row 200 ms apart; `%(ready)s` is the page's own condition,
# `%(wait_ms)d` the deadline.
_SETTLED = """new Promise((resolve, reject) => {
  const deadline = Date.now() + %(wait_ms)d;
  let calm = 0;
  const check = () => {
    const running = document.querySelector('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stSkeleton"]');
    const charts = [...document.querySelectorAll('.vega-embed')].every(e => e.querySelector('canvas, svg.marks'));
    const tables = [...document.querySelectorAll('.stDataFrame')]  // in a closed expander: not drawn
      .every(t => !t.checkVisibility() || t.querySelector('canvas'));
    const drawn = charts && tables;  // reported below as `charts, tables`
    const ready = (%(ready)s);
    calm = (!running && drawn && ready) ? calm + 1 : 0;
    if (calm >= 2) { resolve(document.body.innerText); return; }
    if (Date.now() > deadline) {
      reject(new Error(`not rendered: running=${!!running}, charts=${charts}, tables=${tables}, ready=${ready}`));
      return;
    }
    setTimeout(check, 200);
  };
  check();
})"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "Chromium is not installed (Debian: apt-get install -y chromium); the browser tests need it"
    if os.environ.get("CI") == "true" or os.environ.get("LAKEBOX_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"CI=true or LAKEBOX_REQUIRE_CHROMIUM=1, but {reason}")
    pytest.skip(reason)


@contextmanager
def dashboard(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
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


class DevTools:
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
            reply = json.loads(self.ws.recv(timeout=90))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply["result"]


class Page:
    """One browser tab at a fixed viewport size."""

    def __init__(self, tools: DevTools, width: int, height: int, shots: Path) -> None:
        self.tools, self.width, self.height, self.shots = tools, width, height, shots

    def open(self, url: str, ready: str = "true", wait_ms: int = 60_000) -> str:
        """Go to `url`; the page's text once it has rendered and `ready` (a JS expression) holds."""
        self.tools.call("Page.navigate", url=url)
        result = self.tools.call("Runtime.evaluate", expression=_SETTLED % {"ready": ready, "wait_ms": wait_ms},
                                 awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            failed = self.screenshot("failed")
            raise AssertionError(f"the dashboard did not render at {url} ({self.width} px): "
                                 f"{result['exceptionDetails'].get('exception', {}).get('description')} "
                                 f"(screenshot: {failed})")
        return str(result["result"]["value"])

    def evaluate(self, expression: str) -> Any:
        result = self.tools.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, name: str) -> Path:
        """A PNG of the viewport, kept in tmp (and in $LAKEBOX_SCREENSHOTS when set)."""
        png = base64.b64decode(self.tools.call("Page.captureScreenshot", format="png")["data"])
        path = self.shots / f"{name}-{self.width}.png"
        path.write_bytes(png)
        keep = os.environ.get("LAKEBOX_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep, path.name))
        return path


@contextmanager
def browser(shots: Path, width: int, height: int) -> Iterator[Page]:
    """Headless Chromium with one tab of `width` x `height` CSS pixels."""
    from websockets.sync.client import connect

    profile = shots / "chromium-profile"
    process = subprocess.Popen(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        endpoint = next((line.split(" on ", 1)[1].strip() for line in process.stderr
                         if line.startswith("DevTools listening on ")), None)
        assert endpoint, f"Chromium exited ({process.wait()}) without opening DevTools"
        with connect(endpoint, max_size=None) as ws:
            tools = DevTools(ws)
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            page = DevTools(ws, tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
            page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
            yield Page(page, width, height, shots)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
