"""`lakebox serve` as a user starts it: three UIs answer, a run launched through Dagster's
GraphQL API and a backfill of three retail days run lakebox's own stages (audit rows in
ops.*), the asset graph shows lakebox's assets in a real browser, and Ctrl-C leaves no process.

One `lakebox serve` is shared by the module (it takes ~30 s to come up on a busy machine);
the last test stops it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from lakebox.ports import can_listen, free_port
from tests.orchestration.conftest import DAGSTER_WARNINGS, drop_days, query

pytestmark = [*DAGSTER_WARNINGS, pytest.mark.slow]
READY_S = 150
REPO = {"repositoryLocationName": "lakebox", "repositoryName": "__repository__"}
ASSET_NAMES = ("retail_daily_sales", "stg_retail_stores", "stockout_impact", "weekday_vs_weekend", "store_insights")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dagster-asset-graph.png"


@dataclass
class Served:
    process: subprocess.Popen[str]
    home: Path
    ports: dict[str, int]
    output: Path
    ready_s: float

    @property
    def graphql(self) -> str:
        return f"http://127.0.0.1:{self.ports['dagster']}/graphql"

    def gql(self, query_text: str, **variables: Any) -> dict[str, Any]:
        reply = httpx.post(self.graphql, json={"query": query_text, "variables": variables}, timeout=60)
        reply.raise_for_status()
        body = reply.json()
        assert "errors" not in body, body
        return body["data"]


def _start(env: dict[str, str], ports: dict[str, int], output: Path) -> subprocess.Popen[str]:
    with output.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lakebox.cli", "serve", "--dagster-port", str(ports["dagster"]),
             "--mlflow-port", str(ports["mlflow"]), "--dashboard-port", str(ports["dashboard"])],
            env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=env["LAKEBOX_HOME"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, generated_drop: Path) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEBOX_", "DAGSTER_", "MLFLOW_"))}
    env.update(LAKEBOX_HOME=str(home), LAKEBOX_CACHE_DIR=os.environ.get("LAKEBOX_CACHE_DIR", ""),
               LAKEBOX_DEMO_ORDERS="1000", LAKEBOX_ORDERS_SCHEDULE="off", LAKEBOX_RETAIL_SENSOR_INTERVAL="3600",
               LAKEBOX_LOG_LEVEL="WARNING")
    ports = {name: free_port() for name in ("dagster", "mlflow", "dashboard")}
    output = root / "serve.out"
    t0 = time.monotonic()
    process = _start(env, ports, output)
    deadline = t0 + READY_S
    while "ready in" not in output.read_text():
        assert process.poll() is None, f"lakebox serve exited {process.returncode}:\n{output.read_text()}"
        assert time.monotonic() < deadline, f"lakebox serve not ready in {READY_S} s:\n{output.read_text()}"
        time.sleep(0.2)
    served = Served(process, home, ports, output, time.monotonic() - t0)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
                process.kill()
                process.wait()


def test_serve_answers_on_all_three_uis(served: Served) -> None:
    text = served.output.read_text()
    for name, port in served.ports.items():
        assert f"http://127.0.0.1:{port}/" in text, name
    assert httpx.get(f"http://127.0.0.1:{served.ports['dagster']}/server_info", timeout=10).status_code == 200
    assert "MLflow" in httpx.get(f"http://127.0.0.1:{served.ports['mlflow']}/", timeout=10).text
    assert httpx.get(f"http://127.0.0.1:{served.ports['dashboard']}/_stcore/health", timeout=10).text == "ok"
    config = (served.home / "dagster" / "dagster.yaml").read_text()
    assert "enabled: false" in config and "key: lakebox/pipeline" in config
    print(f"lakebox serve ready in {served.ready_s:.1f} s")


def test_a_taken_port_is_refused_before_anything_starts(served: Served) -> None:
    env = {**os.environ, "LAKEBOX_HOME": str(served.home / "other")}
    out = subprocess.run([sys.executable, "-m", "lakebox.cli", "serve", "--dagster-port", str(free_port()),
                          "--mlflow-port", str(served.ports["mlflow"]), "--dashboard-port", str(free_port())],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"port {served.ports['mlflow']} on 127.0.0.1 (mlflow) is taken" in out.stderr
    assert "--mlflow-port" in out.stderr and "nothing was started" in out.stderr
    assert not (served.home / "other" / "logs" / "serve-dagster.log").exists()


_LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
_RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status startTime endTime tags { key value } } } } }"""


def _wait_for_runs(served: Served, run_filter: dict[str, Any], count: int, deadline_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + deadline_s
    while True:
        runs = served.gql(_RUNS, filter=run_filter)["runsOrError"]["results"]
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        if len(runs) == count and len(done) == count:
            return runs
        assert time.monotonic() < deadline, f"runs not finished in {deadline_s} s: {runs}"
        time.sleep(0.5)


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def test_a_run_launched_through_graphql_runs_lakebox_stages(served: Served) -> None:
    launched = served.gql(_LAUNCH, params={"selector": {**REPO, "jobName": "orders_job"}, "runConfigData": {}})
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["launchRun"]["run"]["runId"]
    [run] = _wait_for_runs(served, {"runIds": [run_id]}, 1, 240)
    assert run["status"] == "SUCCESS"
    tags = _tags(run)
    assert tags["lakebox/pipeline"] == "orders"
    rows = query(served.home, "select pipeline, status, rows_in, duration_s from ops.pipeline_runs where run_id = ?",
                 [tags["lakebox/run_id"]])
    assert [r[:3] for r in rows] == [("orders", "success", 1000)]
    print(f"orders (1k) through Dagster: {run['endTime'] - run['startTime']:.1f} s run, "
          f"{rows[0][3]:.1f} s inside lakebox")


_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def test_a_backfill_of_three_retail_days(served: Served, generated_drop: Path) -> None:
    days = ["2025-03-10", "2025-03-11", "2025-03-12"]
    drop_days(generated_drop, served.home / "landing" / "retail", *days)
    launched = served.gql(_BACKFILL, params={
        "selector": {"partitionSetName": "retail_job_partition_set", "repositorySelector": REPO},
        "partitionNames": days})
    assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
    backfill = launched["launchPartitionBackfill"]["backfillId"]
    [run] = _wait_for_runs(served, {"tags": [{"key": "dagster/backfill", "value": backfill}]}, 1, 300)
    assert run["status"] == "SUCCESS"  # the days in one run: one dbt build, not one per day
    tags = _tags(run)
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (days[0], days[-1])
    assert query(served.home, "select status from ops.pipeline_runs where run_id = ?", [tags["lakebox/run_id"]]) == [
        ("success",)]
    loaded = query(served.home, "select distinct date from analytics.store_daily_performance order by 1")
    assert [str(d[0]) for d in loaded] == days


_GRAPH_READY = """new Promise((resolve, reject) => {
  const deadline = Date.now() + 45000;
  const names = %s;
  const skip = () => [...document.querySelectorAll("button")].filter(b => b.innerText.trim() === "Skip")
    .forEach(b => b.click());
  const settle = (text, until) => {  // Dagster's newsletter prompt comes a moment later: dismiss it
    skip();
    if (Date.now() > until) { resolve(text); return; }
    setTimeout(() => settle(text, until), 250);
  };
  const check = () => {
    skip();
    const text = document.body ? document.body.innerText : "";
    if (names.every(n => text.includes(n))) { settle(text, Date.now() + 3000); return; }
    if (Date.now() > deadline) { reject(new Error("asset graph lacks: " + names.filter(n => !text.includes(n)))); return; }
    setTimeout(check, 250);
  };
  check();
})"""


def test_the_asset_graph_shows_lakebox_assets_in_a_browser(served: Served, tmp_path: Path) -> None:
    from websockets.sync.client import connect

    from tests.dashboard.test_screenshot import _chromium, _DevTools

    chromium = _chromium()
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1600,1000", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert browser.stderr is not None
        endpoint = next((line.split(" on ", 1)[1].strip() for line in browser.stderr
                         if line.startswith("DevTools listening on ")), None)
        assert endpoint, "Chromium did not open DevTools"
        with connect(endpoint, max_size=None) as ws:
            tools = _DevTools(ws)
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            page = _DevTools(ws, tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
            page.call("Emulation.setDeviceMetricsOverride", width=1600, height=1000, deviceScaleFactor=1, mobile=False)
            group = "locations/lakebox/asset-groups/retail/lineage"
            page.call("Page.navigate", url=f"http://127.0.0.1:{served.ports['dagster']}/{group}")
            result = page.call("Runtime.evaluate", expression=_GRAPH_READY % json.dumps(list(ASSET_NAMES)),
                               awaitPromise=True, returnByValue=True)
            png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
            shown = page.call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True)
        (tmp_path / "graph.png").write_bytes(png)
        assert "exceptionDetails" not in result, f"{result['exceptionDetails']} (see {tmp_path / 'graph.png'})"
        assert len(png) > 20_000
        assert "Join the Dagster community" not in shown["result"]["value"]  # nothing covers the graph
        if os.environ.get("LAKEBOX_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp_path / "graph.png", SCREENSHOT)
    finally:
        browser.terminate()
        browser.wait(timeout=10)
        if browser.stderr is not None:
            browser.stderr.close()


def test_ctrl_c_stops_every_process(served: Served) -> None:
    """Last in this module: it stops the shared `lakebox serve`."""
    parent = psutil.Process(served.process.pid)
    children = parent.children(recursive=True)
    groups = {os.getpgid(c.pid) for c in children if c.is_running()}
    assert len(groups) >= 4  # webserver, daemon, mlflow, dashboard: each its own group
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=60) == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"still running after Ctrl-C: {[p.cmdline() for p in alive]}"
    strays = [p.pid for p in psutil.process_iter(["pid"]) if _pgid(p.pid) in groups]
    assert not strays
    assert [port for port in served.ports.values() if not can_listen(port)] == [], "a port is still listened on"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
