"""The commands as a user runs them: `lakebox watch --metrics-port`, `lakebox run` with a
Pushgateway that is down."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli
from tests.observability.conftest import free_port, wait_for


def test_watch_offers_a_metrics_port_and_gc_is_a_command(lakebox_env: dict[str, str]) -> None:
    assert "--metrics-port" in run_cli("watch", "--help", env=lakebox_env).stdout
    assert "--older-than" in run_cli("gc", "--help", env=lakebox_env).stdout


@pytest.mark.slow
def test_watch_serves_metrics_and_counts_its_runs(lakebox_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**lakebox_env, "LAKEBOX_METRICS_REFRESH": "0.2"}
    log = tmp_path / "watch.err"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "lakebox.cli", "watch", "retail", "--metrics-port", str(port),
                                 "--poll", "0.2"], env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        text = wait_for(lambda: 'lakebox_pipeline_runs_total{pipeline="retail"' in (t := httpx.get(url).text) and t,
                        timeout=120, what=f"a retail run counted on /metrics ({log})")
        assert 'lakebox_run_duration_seconds_count{pipeline="retail"' in text, "the watch loop observed its run"
        assert httpx.get(f"http://127.0.0.1:{port}/nothing").status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log.read_text()[-2000:]
    assert f'"url":"http://127.0.0.1:{port}/metrics"' in log.read_text()
