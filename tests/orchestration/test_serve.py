"""`lakebox serve` as a user starts it: three UIs answer with no sign-up prompt or telemetry,
MLflow's on model training, a run launched through Dagster's GraphQL API and a backfill of
three retail days run lakebox's own stages (audit rows in ops.*), the asset graph shows
lakebox's assets in a real browser, Ctrl-C leaves no process, and serve starts again at
once on the same ports, its sensors starting from what is loaded and showing the runs made
outside Dagster.

One `lakebox serve` is shared by the module (it takes ~30 s to come up on a busy machine);
the last two tests stop it and start it again.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
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
from tests.orchestration.conftest import DAGSTER_WARNINGS, break_first_sale, drop_days, query

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
    env: dict[str, str]

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


def _wait_ready(process: subprocess.Popen[str], output: Path, t0: float) -> float:
    deadline = t0 + READY_S
    while "ready in" not in output.read_text():
        assert process.poll() is None, f"lakebox serve exited {process.returncode}:\n{output.read_text()}"
        assert time.monotonic() < deadline, f"lakebox serve not ready in {READY_S} s:\n{output.read_text()}"
        time.sleep(0.2)
    return time.monotonic() - t0


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


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
    served = Served(process, home, ports, output, 0.0, env)
    try:
        served.ready_s = _wait_ready(process, output, t0)
        yield served
    finally:
        _stop(served.process)  # the one running now: the restart test replaces the first


def test_serve_answers_on_all_three_uis(served: Served) -> None:
    text = served.output.read_text()
    for name, port in served.ports.items():
        assert f"http://127.0.0.1:{port}/" in text, name
    assert httpx.get(f"http://127.0.0.1:{served.ports['dagster']}/server_info", timeout=10).status_code == 200
    assert "MLflow" in httpx.get(f"http://127.0.0.1:{served.ports['mlflow']}/", timeout=10).text
    assert httpx.get(f"http://127.0.0.1:{served.ports['dashboard']}/_stcore/health", timeout=10).text == "ok"
    config = (served.home / "dagster" / "dagster.yaml").read_text()
    assert "key: lakebox/pipeline" in config
    print(f"lakebox serve ready in {served.ready_s:.1f} s")


def test_no_sign_up_prompt_and_no_telemetry_in_any_ui(served: Served) -> None:
    import yaml

    config = yaml.safe_load((served.home / "dagster" / "dagster.yaml").read_text())
    assert config["telemetry"] == {"enabled": False} and config["nux"] == {"enabled": False}
    assert served.gql("{ shouldShowNux }") == {"shouldShowNux": False}  # Dagster's "join the community" modal
    children = {" ".join(p.cmdline()): p for p in psutil.Process(served.process.pid).children(recursive=True)}
    [mlflow] = [p for cmd, p in children.items() if "-m mlflow server" in cmd]
    assert {k: mlflow.environ().get(k) for k in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")} == {
        "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    [streamlit] = [cmd for cmd in children if "-m streamlit run" in cmd]
    assert "--browser.gatherUsageStats false" in streamlit


def test_the_mlflow_ui_opens_on_model_training(served: Served, tmp_path: Path) -> None:
    """MLflow 3 opens on GenAI (traces, the registry hidden) unless the browser chose otherwise."""
    from tests.dashboard.browser import chromium as _chromium

    url = f"http://127.0.0.1:{served.ports['mlflow']}/"
    assert "mlflow.workflowType_v1" in httpx.get(url, timeout=10).text
    dom = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900", "--virtual-time-budget=20000",
         "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    for shown in ("Model training", "Experiments", "Model registry"):  # the registry: model training's sidebar
        assert shown in dom, f"{shown!r} is not on MLflow's first page"
    assert "Information about UI telemetry" not in dom


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


_EVENTS = """query($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events {
  __typename ... on MessageEvent { message } ... on StepEvent { stepKey }
  ... on ErrorEvent { error { message stack causes { message stack } } } } } ... on PythonError { message } } }"""


def _why(served: Served, run: dict[str, Any]) -> str:
    """A run that did not succeed, said in full: its tags, and each error event's step,
    message, error (with its causes) and where it was raised."""
    logs = served.gql(_EVENTS, runId=run["runId"])["logsForRun"]
    lines, seen = [f"Dagster run {run['runId']} {run['status']}, tags {_tags(run)}"], set()
    for event in logs.get("events", []):
        error = event.get("error")
        if not error and event["__typename"] not in ("ExecutionStepFailureEvent", "RunFailureEvent"):
            continue
        lines.append(f"{event['__typename']} {event.get('stepKey') or ''}: {event.get('message')}")
        for part in [error, *error["causes"]] if error else []:
            if part["message"] not in seen:  # the run's failure repeats its step's error
                seen.add(part["message"])
                lines.append(f"  {part['message'].strip()}\n    at {''.join(part['stack'][-2:]).strip()}")
    return "\n".join(lines if len(lines) > 1 else [*lines, f"no error event: {logs}"])


def test_a_run_launched_through_graphql_runs_lakebox_stages(served: Served) -> None:
    launched = served.gql(_LAUNCH, params={"selector": {**REPO, "jobName": "orders_job"}, "runConfigData": {}})
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["launchRun"]["run"]["runId"]
    [run] = _wait_for_runs(served, {"runIds": [run_id]}, 1, 240)
    assert run["status"] == "SUCCESS", _why(served, run)
    tags = _tags(run)
    assert tags["lakebox/pipeline"] == "orders" and tags["lakebox/status"] == "success"
    rows = query(served.home, "select pipeline, status, rows_in, duration_s from ops.pipeline_runs where run_id = ?",
                 [tags["lakebox/run_id"]])
    assert [r[:3] for r in rows] == [("orders", "success", 1000)]
    print(f"orders (1k) through Dagster: {run['endTime'] - run['startTime']:.1f} s run, "
          f"{rows[0][3]:.1f} s inside lakebox")


_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


_CHECK_RUNS = """query($key: AssetKeyInput!, $check: String!) { assetCheckExecutions(assetKey: $key,
  checkName: $check, limit: 1) { runId evaluation { success severity } } }"""


def test_a_backfill_of_three_retail_days(served: Served, generated_drop: Path) -> None:
    """One run for the three days; the third day's sales file breaks the contract: lakebox
    calls the run `partial`, Dagster's green run says so in a tag and a warning check."""
    days = ["2025-03-10", "2025-03-11", "2025-03-12"]
    landing = served.home / "landing" / "retail"
    drop_days(generated_drop, landing, *days)
    break_first_sale(landing / f"daily_sales_{days[-1]}.csv")
    launched = served.gql(_BACKFILL, params={
        "selector": {"partitionSetName": "retail_job_partition_set", "repositorySelector": REPO},
        "partitionNames": days})
    assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
    backfill = launched["launchPartitionBackfill"]["backfillId"]
    [run] = _wait_for_runs(served, {"tags": [{"key": "dagster/backfill", "value": backfill}]}, 1, 300)
    assert run["status"] == "SUCCESS", _why(served, run)  # the days in one run: one dbt build, not one per day
    tags = _tags(run)
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (days[0], days[-1])
    assert query(served.home, "select status from ops.pipeline_runs where run_id = ?", [tags["lakebox/run_id"]]) == [
        ("partial",)]
    assert tags["lakebox/status"] == "partial"
    loaded = query(served.home, "select distinct date from analytics.store_daily_performance order by 1")
    assert {str(d[0]) for d in loaded} >= set(days[:2])
    raw_sales = {"path": ["raw", "retail_daily_sales"]}
    [gate] = served.gql(_CHECK_RUNS, key=raw_sales, check="quality_gate")["assetCheckExecutions"]
    [open_items] = served.gql(_CHECK_RUNS, key=raw_sales, check="open_quarantine")["assetCheckExecutions"]
    assert gate["runId"] == open_items["runId"] == run["runId"]
    assert gate["evaluation"] == {"success": False, "severity": "ERROR"}
    assert open_items["evaluation"] == {"success": False, "severity": "WARN"}


_GRAPH_READY = """new Promise((resolve, reject) => {
  const deadline = Date.now() + 45000;
  const names = %s;
  const check = () => {
    const text = document.body ? document.body.innerText : "";
    // Dagster's sign-up prompt would come a moment after the graph: wait for it, dismiss nothing
    if (names.every(n => text.includes(n))) { setTimeout(() => resolve(text), 3000); return; }
    if (Date.now() > deadline) { reject(new Error("asset graph lacks: " + names.filter(n => !text.includes(n)))); return; }
    setTimeout(check, 250);
  };
  check();
})"""


def test_the_asset_graph_shows_lakebox_assets_in_a_browser(served: Served, tmp_path: Path) -> None:
    from websockets.sync.client import connect

    from tests.dashboard.browser import DevTools as _DevTools
    from tests.dashboard.browser import chromium as _chromium

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
    """It stops the shared `lakebox serve`; the next test starts it again."""
    parent = psutil.Process(served.process.pid)
    children = parent.children(recursive=True)
    groups = {os.getpgid(c.pid) for c in children if c.is_running()}
    assert len(groups) >= 4  # webserver, daemon, mlflow, dashboard: each its own group
    for port in served.ports.values():  # the servers close these: their ports wait out TIME_WAIT after the stop
        httpx.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}, timeout=10)
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=60) == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"still running after Ctrl-C: {[p.cmdline() for p in alive]}"
    strays = [p.pid for p in psutil.process_iter(["pid"]) if _pgid(p.pid) in groups]
    assert not strays
    assert [port for port in served.ports.values() if not can_listen(port)] == [], "a port is still listened on"


_TICKS = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { ... on Sensor {
  sensorState { ticks(limit: 20) { timestamp status skipReason error { message } } } } } }"""
_MATERIALIZATIONS = """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
  assetMaterializations(limit: 20) { runId metadataEntries { label ... on TextMetadataEntry { text } } } } } }"""


def _time_waiting(ports: dict[str, int]) -> list[int]:
    """The ports a plain bind (no SO_REUSEADDR, as serve's old check did) refuses, with nothing listening."""
    refused = []
    for port in ports.values():
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                refused.append(port)
    return refused


def test_serve_starts_again_at_once_from_what_is_loaded(served: Served) -> None:
    """Started again right after the stop, on the same ports; the retail sensor, looking every
    5 s, asks for no run for the days the backfill loaded, and a `lakebox run` made outside
    Dagster shows on its assets."""
    assert served.process.poll() is not None, "run after test_ctrl_c_stops_every_process"
    assert _time_waiting(served.ports), "no port in TIME_WAIT: this restart would prove nothing"
    env = {**served.env, "LAKEBOX_RETAIL_SENSOR_INTERVAL": "5"}
    output = served.output.with_name("serve-again.out")
    started, t0 = time.time(), time.monotonic()
    served.process = _start(env, served.ports, output)
    print(f"started again in {_wait_ready(served.process, output, t0):.1f} s")
    assert "taken" not in output.read_text()

    retail_runs = len(served.gql(_RUNS, filter={"tags": [{"key": "lakebox/pipeline", "value": "retail"}]})[
        "runsOrError"]["results"])
    selector = {**REPO, "sensorName": "retail_new_drop"}
    deadline = time.monotonic() + 120
    while True:  # two looks: the listing is still, and every file in it was loaded
        ticks = [t for t in served.gql(_TICKS, selector=selector)["sensorOrError"]["sensorState"]["ticks"]
                 if t["timestamp"] > started]
        assert not [t for t in ticks if t["error"]], ticks
        if len(ticks) >= 3:
            break
        assert time.monotonic() < deadline, f"the retail sensor looked {len(ticks)} times in 120 s"
        time.sleep(1)
    assert all(t["status"] == "SKIPPED" for t in ticks), ticks
    runs = served.gql(_RUNS, filter={"tags": [{"key": "lakebox/pipeline", "value": "retail"}]})["runsOrError"]
    assert len(runs["results"]) == retail_runs, "a retail run was queued for drops already loaded"

    out = subprocess.run([sys.executable, "-m", "lakebox.cli", "run", "orders"], env=env, capture_output=True,
                         text=True, timeout=600, cwd=served.home)
    assert out.returncode == 0, out.stderr[-3000:]
    [(outside,)] = query(served.home, "select run_id from ops.pipeline_runs where pipeline = 'orders' "
                         "order by started_at desc limit 1")
    key = {"path": ["analytics", "daily_order_metrics"]}
    deadline = time.monotonic() + 120  # the sensor looks every 30 s
    while True:
        shown = served.gql(_MATERIALIZATIONS, key=key)["assetOrError"]["assetMaterializations"]
        ids = [{e["label"]: e.get("text") for e in m["metadataEntries"]}.get("lakebox_run_id") for m in shown]
        if outside in ids:
            break
        assert time.monotonic() < deadline, f"{outside} not on analytics/daily_order_metrics in 120 s: {shown}"
        time.sleep(1)
    # the run launched through Dagster earlier is there once, as Dagster recorded it; the outside one once
    assert len(ids) == 2 and len(set(ids)) == 2, shown
    _stop(served.process)
    assert served.process.returncode == 0


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
