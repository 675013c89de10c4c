"""`lakebox dashboard`: the command Streamlit is started with, and its exit code."""

from __future__ import annotations

import socket
import subprocess
import sys

import lakebox.dashboard
from lakebox.dashboard import APP, streamlit_command
from tests.conftest import run_cli


def test_public_names_are_pinned() -> None:
    assert lakebox.dashboard.__all__ == ["APP", "serve", "streamlit_command"]


def test_importing_the_package_does_not_import_streamlit() -> None:
    probe = "import sys, lakebox.dashboard; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_streamlit_binds_where_asked_headless_and_without_telemetry() -> None:
    cmd = streamlit_command("127.0.0.1", 8502)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP)]
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--server.port"] == "8502"
    assert flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--client.toolbarMode"] == "viewer"  # no Deploy button
    assert APP.is_file()


def test_the_cli_returns_streamlits_exit_code_when_the_port_is_taken(lakebox_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("dashboard", "--port", str(port), env=lakebox_env, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"http://127.0.0.1:{port}/" in result.stdout
    assert f"Port {port} is not available" in result.stdout + result.stderr
