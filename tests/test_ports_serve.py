"""`lakebox serve` reports a UI ready only when its own child answers: a server that took
the UI's port after serve checked it is named, and everything serve started is stopped."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lakebox.ports import PortTaken, free_port
from tests.conftest import QuietHandler, serve_on_loopback


class AnswersEverything(QuietHandler):
    """Another program's server: 200 on any path, /health included."""

    def do_GET(self) -> None:
        self.send_json(200, b"OK")


def test_serve_does_not_take_a_strangers_answer_for_its_ui(lakebox_env: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dagster_webserver")
    pytest.importorskip("streamlit")
    from lakebox.orchestration import serve
    from lakebox.settings import Settings

    started: list[serve.Supervisor] = []

    class Recorded(serve.Supervisor):
        def __init__(self, env: dict[str, str], logs: Path) -> None:
            super().__init__(env, logs)
            started.append(self)

    monkeypatch.setattr(serve, "Supervisor", Recorded)
    monkeypatch.setattr(serve, "check_ports", lambda host, chosen: None)  # the stranger comes after the check
    with serve_on_loopback(AnswersEverything) as url:
        taken = int(url.rsplit(":", 1)[1])
        with pytest.raises(PortTaken, match=rf"port {taken} on 127.0.0.1 \(mlflow\) is held by another process, "
                                            r"not the one lakebox started; choose another with --mlflow-port"):
            serve.run_services(Settings.load(), "127.0.0.1", free_port(), taken, free_port(), threading.Event())
    (supervisor,) = started
    assert {"dagster", "mlflow", "dashboard"} <= set(supervisor.children)
    assert all(child.poll() is not None for child in supervisor.children.values())  # everything it started stopped
