"""The test cluster's master is the server lakebox talks to, even when another process
takes the web UI port picked for it before the master binds it (Spark alone would move to
the next port and lakebox would read someone else's page)."""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakebox import ports
from tests.conftest import QuietHandler
from tests.warehouse.conftest import JVM_OPTIONS, need_spark

pytestmark = [pytest.mark.spark]


class Stranger(QuietHandler):
    def do_GET(self) -> None:
        self.send_json(200, b"<html>another server</html>", {"Content-Type": "text/html"})


@pytest.fixture
def stolen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[int]]]:
    """The first ports picked for a child, with a stranger listening on the last of them
    (the master's web UI) before the child starts: what another program on the machine
    may do between lakebox's pick and Spark's bind."""
    picks: list[list[int]] = []
    servers: list[http.server.ThreadingHTTPServer] = []
    real = ports.free_ports

    def pick_then_steal(count: int, host: str = "127.0.0.1") -> list[int]:
        picked = real(count, host)
        if not picks:
            servers.append(http.server.ThreadingHTTPServer((host, picked[-1]), Stranger))
            threading.Thread(target=servers[-1].serve_forever, daemon=True).start()
        picks.append(picked)
        return picked

    monkeypatch.setattr(ports, "free_ports", pick_then_steal)
    try:
        yield picks
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_the_master_is_started_again_when_its_ui_port_is_taken(tmp_path: Path, stolen: list[list[int]]) -> None:
    need_spark()
    from lakebox.warehouse.spark_cluster import LocalCluster

    with LocalCluster(tmp_path, workers=1, env=JVM_OPTIONS) as cluster:
        taken = stolen[0][-1]
        assert len(stolen) == 2 and cluster.webui_port == stolen[1][-1] != taken
        state = cluster.state()
        assert state["url"] == cluster.url and len(state["workers"]) == 1  # the master's own JSON
        with urllib.request.urlopen(f"http://127.0.0.1:{taken}/json/", timeout=5) as response:
            assert response.read().startswith(b"<html>")  # the stranger still has its port
        assert ports.holder(cluster.webui_port, cluster.processes[0].pid) == "ours"
    assert ports.holder(cluster.webui_port, 0) == "free"
