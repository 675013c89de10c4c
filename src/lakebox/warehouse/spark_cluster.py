"""A Spark standalone cluster on loopback (one master, N workers), for tests and the bench.

pyspark ships Spark's jars and `bin/spark-class` but not the `sbin` scripts, so the
daemons are started as `spark-class org.apache.spark.deploy.{master.Master,worker.Worker}`.
Each daemon runs in its own process group: stopping a worker also stops the executors
it launched, as losing a machine would. The master binds the two ports picked for it or
exits (`spark.port.maxRetries=0`: Spark would otherwise move to the next port and the UI
lakebox reads would be someone else's); `lakebox.ports.start_listening` confirms it is the
master that listens there and restarts it on new ports on a clash. Workers take ports the
OS gives them (0), so nothing is picked for them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from lakebox.errors import WarehouseError
from lakebox.ports import start_listening

READY_TIMEOUT_S = 180.0
DAEMON_JAVA_OPTS = "-Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class LocalCluster:
    """`with LocalCluster(workdir, workers=2) as cluster:` then use `cluster.url`."""

    workdir: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    env: dict[str, str] = field(default_factory=dict)  # more environment for the daemons and their executors
    port: int = 0  # the master's RPC and web UI ports, known once it started
    webui_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()  # a master or worker that started before the failure
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _daemon(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # No retries: a taken port fails the bind instead of moving the server elsewhere. No REST
        # submission server (its fixed port 6066 would clash with any other cluster's).
        opts = f"{os.environ.get('SPARK_DAEMON_JAVA_OPTS', '')} {DAEMON_JAVA_OPTS}".strip()
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_NO_DAEMONIZE": "1", "SPARK_DAEMON_JAVA_OPTS": opts,
               "SPARK_LOCAL_IP": "127.0.0.1", **self.env}  # SPARK_LOCAL_IP: the web UIs on loopback, not 0.0.0.0
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], stdout=log,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        self.processes.append(process)
        return process

    def start(self) -> None:
        def master(ports: list[int]) -> subprocess.Popen[bytes]:
            self.port, self.webui_port = ports
            self.processes.clear()
            return self._daemon("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                "--port", str(self.port), "--webui-port", str(self.webui_port))

        start_listening(master, 2, ready=lambda _: self.state().get("url") == self.url, what="the Spark master",
                        log=self.workdir / "master.log", timeout=READY_TIMEOUT_S)
        for _ in range(self.workers):
            self.add_worker()

    def add_worker(self) -> subprocess.Popen[bytes]:
        """One more worker; returns once the master counts it alive."""
        number = len(self.processes)
        work = self.workdir / f"worker-{number}"
        process = self._daemon(f"worker-{number}", "org.apache.spark.deploy.worker.Worker", self.url,
                               "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
                               "--webui-port", "0", "--work-dir", str(work))
        expected = sum(1 for p in self.processes[1:] if p.poll() is None)
        self.wait_for(lambda state: len(alive_workers(state)) >= expected, f"{expected} worker(s) to register")
        return process

    def state(self) -> dict[str, Any]:
        """The master's own view (its web UI's JSON): workers, their state and cores used.
        Its `url` names this master's RPC port: `start` checks that before anyone relies on it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui_port}/json/", timeout=5) as response:
            state: dict[str, Any] = json.loads(response.read())
        return state

    def wait_for(self, condition: Any, what: str, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Poll the master until `condition(state)` holds; fail naming `what` and the logs."""
        deadline = time.monotonic() + timeout
        while True:
            if self.processes and self.processes[0].poll() is not None:
                raise WarehouseError(f"the Spark master exited; see {self.workdir / 'master.log'}")
            try:
                state = self.state()
                if condition(state):
                    return state
            except OSError:
                pass  # the master's UI is not up yet
            if time.monotonic() > deadline:
                raise WarehouseError(f"Spark cluster: timed out waiting for {what}; see logs in {self.workdir}")
            time.sleep(0.25)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a daemon and everything it started (a worker's executors)."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.kill(process)
                except ProcessLookupError:
                    pass
        self.processes.clear()


def alive_workers(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
