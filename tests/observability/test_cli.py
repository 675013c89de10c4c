"""The commands as a user runs them: `lakebox watch --metrics-port`, `lakebox run` with a
Pushgateway that is down."""

from __future__ import annotations

import os
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
        # the ops table shows the run (refreshed every 0.2 s) a moment before the watch loop observes
        # its duration: both must come
        counted = ('lakebox_pipeline_runs_total{pipeline="retail"', 'lakebox_run_duration_seconds_count{pipeline="retail"')
        wait_for(lambda: all(c in httpx.get(url).text for c in counted), timeout=120,
                 what=f"a retail run counted on /metrics, and its duration observed by the watch loop ({log})")
        assert httpx.get(f"http://127.0.0.1:{port}/nothing").status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log.read_text()[-2000:]
    assert f'"url":"http://127.0.0.1:{port}/metrics"' in log.read_text()


def test_with_nothing_configured_a_run_costs_nothing_extra(lakebox_env: dict[str, str]) -> None:
    """No URL, no port: no prometheus_client import, no state written, no thread reading tables."""
    script = (
        "import sys, threading\n"
        "from lakebox.settings import Settings\n"
        "from lakebox.observability import after_runs, configure, watching\n"
        "from tests.observability.conftest import run_script\n"
        "settings = Settings.load()\n"
        "configure(settings)\n"
        "after_runs(settings, run_script(settings, [('alpha', False), ('beta', True)]))\n"
        "with watching(settings) as observer:\n"
        "    observer.on_run(run_script(settings, [('alpha', False)])[0])\n"
        "    print(sorted(t.name for t in threading.enumerate() if t.name.startswith('lakebox-')))\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env={**lakebox_env, "PYTHONPATH": os.pathsep.join(sys.path)},
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "False"]
    assert not (Path(lakebox_env["LAKEBOX_HOME"]) / "alerts").exists()
