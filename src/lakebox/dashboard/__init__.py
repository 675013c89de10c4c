"""The Streamlit dashboard over the configured warehouse: each pipeline's page (from its folder), platform health.

`serve` starts Streamlit in a child process; importing this package does not import
Streamlit, so `lakebox --help` stays fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.settings import Settings

__all__ = ["APP", "serve", "streamlit_command"]

APP = Path(__file__).with_name("app.py")


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",  # no Deploy button, no developer menu
    ]


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8501) -> int:
    """Run the dashboard until interrupted; returns Streamlit's exit code (130 on Ctrl+C)."""
    env = dict(os.environ)
    # The child must read exactly the warehouse and lake this process resolved
    # (lakebox.toml and relative paths are resolved against our working directory).
    env.update(LAKEBOX_HOME=str(settings.home), LAKEBOX_WAREHOUSE=settings.warehouse, LAKEBOX_LAKE=settings.lake)
    shown = f"[{host}]" if ":" in host else host
    print(f"lakebox dashboard: http://{shown}:{port}/  (warehouse {settings.describe()['warehouse']}; "
          "Ctrl+C stops it)", flush=True)
    child = subprocess.Popen(streamlit_command(host, port), env=env)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    try:
        return child.wait()
    except KeyboardInterrupt:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
