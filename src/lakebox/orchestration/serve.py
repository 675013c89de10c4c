"""`lakebox serve`: Dagster (webserver and daemon), the MLflow UI and the dashboard, together.

Each UI is a child process in its own process group, so stopping one stops everything it
started (Dagster's code server and runs, MLflow's workers). Every port is checked before
anything starts, as a server would bind it (SO_REUSEADDR: a port whose old connections wait
out TIME_WAIT after a stop is free); Ctrl-C or SIGTERM stops them all, and so does any one
of them ending. Telemetry and sign-up prompts are off in all three UIs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lakebox.ports import can_listen, confirm_listener

if TYPE_CHECKING:
    from lakebox.settings import Settings

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0
DEFINITIONS = "lakebox.orchestration.dagster"
MLFLOW_APP = "lakebox"  # orchestration.mlflow_ui: MLflow's UI opening on model training
# Telemetry off for every child (Dagster's is also off in dagster.yaml, Streamlit's on its command line).
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "true"}


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    command: list[str]
    health: str  # path that answers 200 once it serves
    option: str  # the option that moves it
    after: str = ""  # started once this service answers

    def url(self, host: str) -> str:
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"


def services(settings: Settings, host: str, dagster_port: int, mlflow_port: int, dashboard_port: int,
             dagster_home: Path) -> list[Service]:
    from lakebox.dashboard import streamlit_command
    from lakebox.ml.tracking import tracking_uri

    workspace = _workspace(dagster_home)
    return [
        Service("dagster", dagster_port, [sys.executable, "-m", "dagster_webserver", "-h", host, "-p", str(dagster_port),
                                          "-w", str(workspace)], "/server_info", "--dagster-port"),
        # The daemon (and the code server it starts) waits for the webserver: two fewer Python
        # processes importing Dagster and the definitions while the UIs start on a small machine.
        Service("dagster-daemon", 0, [sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace)], "", "",
                after="dagster"),
        Service("mlflow", mlflow_port, [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                                        tracking_uri(settings), "--host", host, "--port", str(mlflow_port),
                                        "--workers", "1", "--app-name", MLFLOW_APP], "/health", "--mlflow-port"),
        Service("dashboard", dashboard_port, streamlit_command(host, dashboard_port), "/_stcore/health",
                "--dashboard-port"),
    ]


def _workspace(dagster_home: Path) -> Path:
    path = dagster_home / "workspace.yaml"
    path.write_text(f"load_from:\n  - python_module:\n      module_name: {DEFINITIONS}\n      location_name: lakebox\n")
    return path


def check_ports(host: str, chosen: list[Service]) -> None:
    """Raise ConfigError naming every port something listens on, and the option that moves it."""
    from lakebox.errors import ConfigError

    taken = [f"port {service.port} on {host} ({service.name}) is taken: something listens on it; "
             f"stop what holds it or choose another with {service.option}"
             for service in chosen if service.port and not can_listen(service.port, host)]
    if taken:
        raise ConfigError("nothing was started:\n  " + "\n  ".join(taken))


def _check_installed() -> None:
    """The UIs' packages, named with the command that installs them, before anything starts."""
    import importlib.util

    from lakebox.errors import ConfigError

    missing = [m for m in ("dagster_webserver", "streamlit") if importlib.util.find_spec(m) is None]
    found = importlib.util.find_spec("mlflow")  # mlflow-skinny has no UI: look for its files, importing nothing
    if found is None or not found.origin or not (Path(found.origin).parent / "server" / "js" / "build").is_dir():
        missing.append("the MLflow UI (the full mlflow package)")
    if missing:
        raise ConfigError(
            f"nothing was started: {', '.join(missing)} not installed. Install the serve extra "
            "(pip install -c constraints.txt -e '.[serve]') and the MLflow UI (pip install --no-deps "
            "mlflow==3.17.2 mlflow-tracing==3.17.2 gunicorn==26.2.0 huey==3.5.4)")


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Supervisor:
    """The children, each a process-group leader; `stop` ends every group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: Service) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"serve-{service.name}.log").open("ab") as out:
            self.children[service.name] = subprocess.Popen(
                service.command, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def exited(self) -> tuple[str, int] | None:
        for name, child in self.children.items():
            if child.poll() is not None:
                return name, child.returncode
        return None

    def stop(self) -> None:
        for child in self.children.values():
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(child.pid, signal.SIGKILL)  # whatever of its group is still there
            child.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def run_services(settings: Settings, host: str, dagster_port: int, mlflow_port: int, dashboard_port: int,
                 stop: threading.Event) -> int:
    """Start everything, print the URLs once all answer, and wait for `stop` or a child's end."""
    from lakebox.errors import LakeboxError
    from lakebox.orchestration.home import dagster_environment, init_storage
    from lakebox.orchestration.mlflow_ui import mlflow_app_path

    env = dagster_environment(settings)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # else ~2.5 GB and stray job workers
    env.update(NO_TELEMETRY)
    app_path = mlflow_app_path(settings.home / "serve" / "mlflow-app")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(app_path), env.get("PYTHONPATH", "")) if p)
    chosen = services(settings, host, dagster_port, mlflow_port, dashboard_port, Path(env["DAGSTER_HOME"]))
    check_ports(host, chosen)
    _check_installed()
    init_storage(Path(env["DAGSTER_HOME"]))
    supervisor = Supervisor(env, settings.logs_dir)
    t0 = time.monotonic()
    try:
        later = [s for s in chosen if s.after]
        for service in chosen:
            if not service.after:
                supervisor.start(service)
        waiting = [s for s in chosen if s.health]
        while (waiting or later) and not stop.is_set():
            if (ended := supervisor.exited()) is not None:
                raise LakeboxError(f"{ended[0]} exited with code {ended[1]} while starting; "
                                   f"see {settings.logs_dir / f'serve-{ended[0]}.log'}")
            if time.monotonic() - t0 > READY_TIMEOUT_S:
                raise LakeboxError(f"{', '.join(s.name for s in waiting)} did not answer within {READY_TIMEOUT_S:.0f} s; "
                                   f"see the serve-*.log files in {settings.logs_dir}")
            waiting = [s for s in waiting if not (_answers(s.url(host).rstrip("/") + s.health) and confirm_listener(
                supervisor.children[s.name], s.port, host, s.name, f"choose another with {s.option}"))]
            for service in [s for s in later if s.after not in {w.name for w in waiting}]:
                supervisor.start(service)
                later.remove(service)
            if waiting:
                stop.wait(0.25)
        if not stop.is_set():
            print(f"lakebox serve: ready in {time.monotonic() - t0:.1f} s (Ctrl+C stops everything)", flush=True)
            for service in chosen:
                if service.health:
                    print(f"  {service.name:10} {service.url(host)}", flush=True)
        while not stop.is_set():
            if (ended := supervisor.exited()) is not None:
                raise LakeboxError(f"{ended[0]} exited with code {ended[1]}; everything was stopped; "
                                   f"see {settings.logs_dir / f'serve-{ended[0]}.log'}")
            stop.wait(0.5)
        return 0
    finally:
        supervisor.stop()


def serve(
    host: Annotated[str, typer.Option(help="address to bind (loopback unless told otherwise)")] = "127.0.0.1",
    dagster_port: Annotated[int, typer.Option(min=1, max=65535, help="Dagster's UI: assets, runs, schedules, sensors")] = 3000,
    mlflow_port: Annotated[int, typer.Option(min=1, max=65535, help="the MLflow UI over the tracking store")] = 5000,
    dashboard_port: Annotated[int, typer.Option(min=1, max=65535, help="the Streamlit dashboard")] = 8501,
) -> None:
    """Start Dagster (UI and daemon: schedules, sensors, backfills), the MLflow UI and the dashboard."""
    from lakebox.errors import LakeboxError
    from lakebox.log import configure_logging
    from lakebox.settings import Settings, redact

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        settings = Settings.load()
        configure_logging(settings.logs_dir, settings.log_level)
        code = run_services(settings, host, dagster_port, mlflow_port, dashboard_port, stop)
    except LakeboxError as exc:
        typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(getattr(exc, "exit_code", 1)) from None
    raise typer.Exit(code)
