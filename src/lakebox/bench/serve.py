"""Bench: `lakebox serve` and Dagster (issue 11).

- Start-up: `lakebox serve` on free ports in a new home, timed from the command until the
  Dagster webserver, the MLflow UI and the dashboard all answer HTTP (and, apart, until
  Dagster has loaded lakebox's definitions); then SIGTERM, and no process may be left.
- A run through Dagster: with serve up, orders (1k orders) launched as a user would, through
  the webserver's GraphQL API (queued, dequeued by the daemon, launched by the code server),
  timed from the launch to the run's success; beside a one-shot `lakebox run orders` of 1k
  orders in another new home at the same time (serve up, idle), start-up included.
- The daemon's memory: the scheduler's tick (the function Dagster's scheduler daemon calls
  each iteration, against a code server as the daemon runs it) driven with a clock moved on
  one hour per tick, so the hourly orders schedule ticks 100 times in a minute or two;
  RSS after 10 and after 100 ticks. A minute's cron in the real daemon would take 100 minutes.

The daemon scenario runs in its own process: `python -m lakebox.bench.serve ticks JSON`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from lakebox.ports import can_listen, free_port

READY_TARGET_S = 30.0
RUN_MARGIN_S = 8.0
MEMORY_TARGET = 0.10
READY_TIMEOUT_S = 240.0
RUN_TIMEOUT_S = 300.0
REPO = {"repositoryLocationName": "lakebox", "repositoryName": "__repository__"}
HEALTH = {"dagster": "/server_info", "mlflow": "/health", "dashboard": "/_stcore/health"}
_LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
_RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime tags { key value } } } }"""
_LOCATION = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename } } } } }"""


def missing() -> str | None:
    """Why the scenario cannot run here, or None."""
    import importlib.util

    absent = [m for m in ("dagster", "dagster_webserver", "streamlit", "mlflow") if importlib.util.find_spec(m) is None]
    return f"{', '.join(absent)} not installed (the serve extra)" if absent else None


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _gql(port: int, query: str, **variables: Any) -> dict[str, Any]:
    import httpx

    reply = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=60)
    reply.raise_for_status()
    body = reply.json()
    if "errors" in body:
        raise RuntimeError(f"Dagster's GraphQL API: {body['errors']}")
    return dict(body["data"])


def _location_loaded(port: int) -> bool:
    import httpx

    try:
        entries = _gql(port, _LOCATION)["workspaceOrError"]["locationEntries"]
    except (httpx.HTTPError, RuntimeError, KeyError):
        return False
    if any(e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "PythonError" for e in entries):
        raise RuntimeError(f"Dagster could not load lakebox's definitions: {entries}")
    return bool(entries) and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries)


def _one_shot(env: dict[str, str], orders: int) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lakebox.cli", "run", "orders"], capture_output=True, text=True,
                          env={**env, "LAKEBOX_DEMO_ORDERS": str(orders)})
    if proc.returncode != 0:
        raise RuntimeError(f"lakebox run orders failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def _dagster_run(port: int, home: Path) -> dict[str, Any]:
    """Launch orders_job through GraphQL; seconds from the launch to the run's success."""
    import duckdb

    t0 = time.perf_counter()
    launched = _gql(port, _LAUNCH, params={"selector": {**REPO, "jobName": "orders_job"}, "runConfigData": {}})
    if launched["launchRun"]["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"Dagster did not launch orders_job: {launched}")
    run_id = launched["launchRun"]["run"]["runId"]
    while True:
        run = _gql(port, _RUN, id=run_id)["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        if time.perf_counter() - t0 > RUN_TIMEOUT_S:
            raise RuntimeError(f"the Dagster run {run_id} did not finish in {RUN_TIMEOUT_S:.0f} s ({run['status']})")
        time.sleep(0.1)
    seconds = time.perf_counter() - t0
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"the Dagster run {run_id} ended {run['status']}; see {home / 'logs'} and Dagster's UI")
    lakebox_run = next(t["value"] for t in run["tags"] if t["key"] == "lakebox/run_id")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        inside, rows = con.execute("select duration_s, rows_in from ops.pipeline_runs where run_id = ?",
                                   [lakebox_run]).fetchone() or (0.0, 0)
    return {"seconds": seconds, "started_to_end": run["endTime"] - run["startTime"], "lakebox_seconds": inside, "rows": rows}


def bench_serve(root: Path, orders: int = 1000) -> dict[str, Any]:
    """Start-up, a run through Dagster beside a one-shot run, and the stop."""
    import psutil

    from lakebox.bench import _env, _say

    home = root / "serve"
    home.mkdir(parents=True)
    env = _env(home, LAKEBOX_DEMO_ORDERS=str(orders), LAKEBOX_ORDERS_SCHEDULE="off",
               LAKEBOX_RETAIL_SENSOR_INTERVAL="3600", LAKEBOX_LOG_LEVEL="WARNING")
    env = {k: v for k, v in env.items() if not k.startswith(("DAGSTER_", "MLFLOW_"))}
    ports = {name: free_port() for name in HEALTH}
    output = root / "serve.out"
    _say("`lakebox serve`: until the three UIs answer …")
    t0 = time.perf_counter()
    with output.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lakebox.cli", "serve", "--dagster-port", str(ports["dagster"]),
             "--mlflow-port", str(ports["mlflow"]), "--dashboard-port", str(ports["dashboard"])],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home)
    result: dict[str, Any] = {"orders": orders}
    try:
        answered: dict[str, float] = {}
        loaded = 0.0
        while len(answered) < len(HEALTH) or not loaded:
            if proc.poll() is not None:
                raise RuntimeError(f"lakebox serve exited {proc.returncode}:\n{output.read_text()[-3000:]}")
            if time.perf_counter() - t0 > READY_TIMEOUT_S:
                raise RuntimeError(f"lakebox serve not ready in {READY_TIMEOUT_S:.0f} s:\n{output.read_text()[-3000:]}")
            for name, path in HEALTH.items():
                if name not in answered and _answers(f"http://127.0.0.1:{ports[name]}{path}"):
                    answered[name] = time.perf_counter() - t0
            if "dagster" in answered and not loaded and _location_loaded(ports["dagster"]):
                loaded = time.perf_counter() - t0
            time.sleep(0.1)
        result.update(answered=answered, ready=max(answered.values()), definitions_loaded=loaded,
                      cpu_to_ready=_tree_cpu(proc.pid, psutil))
        _say(f"`lakebox run orders` with {orders:,} orders (one-shot, serve up and idle) …")
        result["one_shot"] = _one_shot(_env(root / "serve-one-shot", LAKEBOX_LOG_LEVEL="WARNING"), orders)
        _say(f"orders ({orders:,}) launched through Dagster's GraphQL API …")
        result["dagster_run"] = _dagster_run(ports["dagster"], home)
    finally:
        result["stop"] = _stop(proc, list(ports.values()), psutil)
    return result


def _tree_cpu(pid: int, psutil: Any) -> float:
    """CPU seconds `lakebox serve` and its processes have used so far: on a loaded machine the
    start-up's wall time says more about the neighbours than about serve."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _stop(proc: subprocess.Popen[bytes], ports: list[int], psutil: Any) -> dict[str, Any]:
    """SIGTERM `lakebox serve`, as a service manager stops it; what is left after it exits."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    groups = {_pgid(c.pid) for c in children} - {None}
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.perf_counter() - t0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    left = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) in groups]
    strays = sorted({p.pid for p in [*alive, *left]})
    if code is None:
        proc.kill()
        proc.wait()
    for pid in strays:  # the bench leaves nothing behind: these are reported, then ended
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    busy = [port for port in ports if not can_listen(port)]
    return {"seconds": seconds, "exit_code": code, "processes": len(children), "left": len(strays),
            "ports_still_bound": busy}


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def bench_issue11(root: Path, ticks: int = 100) -> dict[str, Any]:
    """Every issue 11 scenario; skipped (with the reason) without the serve extra. A scenario
    that fails is reported as such and the bench goes on."""
    reason = missing()
    if reason:
        return {"skipped": reason}
    result: dict[str, Any] = {}
    try:
        result.update(bench_serve(root))
    except Exception as exc:  # noqa: BLE001 - reported in the bench's table; the bench goes on
        result["failed"] = f"{type(exc).__name__}: {exc}"[-2000:]
    try:
        result["daemon"] = bench_daemon_memory(root, ticks)
    except Exception as exc:  # noqa: BLE001
        result["failed"] = (result.get("failed", "") + f"\n{type(exc).__name__}: {exc}"[-2000:]).strip()
    return result


def bench_daemon_memory(root: Path, ticks: int = 100) -> dict[str, Any]:
    from lakebox.bench import _env, _say
    from lakebox.bench.observability import own_worker

    _say(f"Dagster's scheduler: {ticks} ticks of the orders schedule, RSS after 10 and after {ticks} …")
    env = _env(root / "daemon", LAKEBOX_LOG_LEVEL="WARNING")
    return own_worker(__name__, "ticks", {k: v for k, v in env.items() if not k.startswith("DAGSTER_")}, ticks=ticks)


def targets(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if "skipped" in result:
        return [("`lakebox serve` and Dagster (issue 11)", f"skipped: {result['skipped']}", "–")]
    if "failed" in result:
        rows.append(("`lakebox serve` and Dagster (issue 11)", "failed: see below", "no"))
    if "ready" in result:
        s = result["stop"]
        rows.append(("`lakebox serve` answering on all three UIs ≤ 30 s from the command",
                     f"{result['ready']:.1f} s (definitions loaded {result['definitions_loaded']:.1f} s)",
                     "yes" if result["ready"] <= READY_TARGET_S else "no"))
        rows.append(("… and SIGTERM leaves no process behind", f"{s['left']} left of {s['processes']}, "
                     f"stopped in {s['seconds']:.1f} s", "yes" if s["left"] == 0 and s["exit_code"] == 0 else "no"))
    if "dagster_run" in result:
        d, one = result["dagster_run"]["seconds"], result["one_shot"]
        rows.append((f"a {result['orders'] // 1000}k-order run launched through Dagster ≤ `lakebox run orders` + 8 s",
                     f"{d:.1f} s vs {one:.1f} s (+{d - one:.1f} s)", "yes" if d <= one + RUN_MARGIN_S else "no"))
    if "daemon" in result:
        m = result["daemon"]
        growth = m["rss_mb"][-1] / m["rss_mb"][0] - 1
        rows.append((f"Dagster daemon RSS after {m['ticks']} schedule ticks within 10% of after {m['first']}",
                     f"{m['rss_mb'][0]:.0f} → {m['rss_mb'][-1]:.0f} MB ({100 * growth:+.1f}%)",
                     "yes" if abs(growth) <= MEMORY_TARGET else "no"))
    return rows


def section(result: dict[str, Any]) -> list[str]:
    if "skipped" in result:
        return []
    lines = ["## `lakebox serve` and Dagster", ""]
    if "failed" in result:
        lines += ["A scenario failed:", "", "```", result["failed"], "```", ""]
    if "ready" in result:
        a, s = result["answered"], result["stop"]
        bound = f"; ports still bound: {s['ports_still_bound']}" if s["ports_still_bound"] else ""
        lines += [f"From the command to an HTTP 200: Dagster's webserver {a['dagster']:.1f} s, the MLflow UI "
                  f"{a['mlflow']:.1f} s, the dashboard {a['dashboard']:.1f} s; Dagster had loaded lakebox's "
                  f"definitions (its code location) at {result['definitions_loaded']:.1f} s; serve's processes had "
                  f"used {result.get('cpu_to_ready', 0):.1f} CPU seconds by then. SIGTERM: `lakebox serve` "
                  f"exited {s['exit_code']} in {s['seconds']:.1f} s; {s['left']} of its {s['processes']} processes "
                  f"were left{bound}.", ""]
    if "dagster_run" in result:
        d = result["dagster_run"]
        lines += [f"orders with {result['orders']:,} orders launched through Dagster's GraphQL API (queued, dequeued "
                  f"by the daemon, launched by the code server): {d['seconds']:.1f} s from the launch to SUCCESS; the "
                  f"run itself {d['started_to_end']:.1f} s (Dagster's start to end), lakebox's stages inside it "
                  f"{d['lakebox_seconds']:.1f} s. A one-shot `lakebox run orders` in a new home, start-up included: "
                  f"{result['one_shot']:.1f} s.", ""]
    if "daemon" in result:
        m = result["daemon"]
        marks = ", ".join(f"{t}: {r:.0f} MB" for t, r in zip(m["at"], m["rss_mb"], strict=True))
        lines += [f"Dagster's scheduler tick (`launch_scheduled_runs`, as the daemon calls it, against a code server) "
                  f"driven {m['ticks']} times with the clock one hour on each time, so the hourly orders schedule "
                  f"ticked and queued a run each time ({m['runs']} runs queued, {m['seconds']:.0f} s). RSS after "
                  f"ticks {marks}.", ""]
    return lines


# --- in a scenario's own process ----------------------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ticks(ticks: int = 100, first: int = 10) -> dict[str, Any]:
    """Dagster's scheduler iteration, as its daemon runs it, with the clock moved on an hour
    each time: the hourly orders schedule ticks once per iteration."""
    import datetime as dt
    import logging

    from dagster import DagsterInstance
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon import get_default_daemon_logger
    from dagster._scheduler.scheduler import launch_scheduled_runs

    from lakebox.orchestration.home import dagster_environment, init_storage
    from lakebox.orchestration.serve import _workspace
    from lakebox.settings import Settings

    settings = Settings.load()
    os.environ.update(dagster_environment(settings))
    from lakebox.pipelines import discover

    for name in discover():  # one schedule ticking: orders, hourly
        os.environ[f"LAKEBOX_{name.upper()}_SCHEDULE"] = "0 * * * *" if name == "orders" else "off"
    home = Path(os.environ["DAGSTER_HOME"])
    init_storage(home)
    logger = get_default_daemon_logger("SchedulerDaemon")
    logger.setLevel(logging.WARNING)
    start = dt.datetime.now(dt.UTC).replace(minute=30, second=0, microsecond=0)
    at, rss, walls = [], [], []
    t0 = time.perf_counter()
    with DagsterInstance.get() as instance, \
            WorkspaceProcessContext(instance, WorkspaceFileTarget([str(_workspace(home))])) as context:
        iteration_times: dict[str, Any] = {}
        for tick in range(ticks + 1):  # the first iteration only starts the schedule
            began = time.perf_counter()
            for _ in launch_scheduled_runs(context, logger, start + dt.timedelta(hours=tick), iteration_times):
                pass
            walls.append(time.perf_counter() - began)
            if tick in (first, ticks) or tick % 10 == 0 and tick:
                at.append(tick)
                rss.append(rss_mb())
        runs = len(instance.get_run_ids())
    return {"ticks": ticks, "first": first, "at": at, "rss_mb": rss, "runs": runs, "seconds": time.perf_counter() - t0,
            "tick_seconds_median": sorted(walls)[len(walls) // 2]}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {"ticks": ticks}

if __name__ == "__main__":
    outcome = SCENARIOS[sys.argv[1]](**orjson.loads(sys.argv[2] if len(sys.argv) > 2 else "{}"))
    sys.stdout.write(orjson.dumps(outcome).decode() + "\n")
