"""A one-shot `lakebox run` imports only what its work needs: pandas is not part of
ingesting, loading or the ops ledger (pyarrow imports it, ~0.4 s, whenever it is handed a
Python list or asked for NumPy, so those paths avoid pyarrow's converters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Runs the real CLI in this process and reports, whatever its exit, which modules it loaded.
PROBE = """
import runpy, sys
sys.argv = ["lakebox", *sys.argv[1:]]
try:
    runpy.run_module("lakebox.cli", run_name="__main__")
finally:
    sys.stderr.write("\\nLOADED " + ",".join(m for m in ("pandas", "dagster", "mlflow", "sklearn") if m in sys.modules) + "\\n")
"""


def _run(env: dict[str, str], *args: str) -> tuple[int, set[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=300)
    line = next(x for x in proc.stderr.splitlines() if x.startswith("LOADED "))
    return proc.returncode, set(filter(None, line.removeprefix("LOADED ").split(","))), proc.stderr[-2000:]


def test_an_orders_run_loads_no_pandas(lakebox_env: dict[str, str]) -> None:
    code, loaded, err = _run({**lakebox_env, "LAKEBOX_DEMO_ORDERS": "1000"}, "run", "orders")
    assert code == 0, err
    assert loaded == set(), f"`lakebox run orders` imported {loaded}"


def test_a_retail_run_loads_no_pandas(lakebox_env: dict[str, str]) -> None:
    from lakebox.pipelines.retail.generator import generate_drops

    landing = Path(lakebox_env["LAKEBOX_HOME"]) / "landing" / "retail"
    generate_drops(str(landing), stores=3, months=1, seed=7, start=None)
    code, loaded, err = _run(lakebox_env, "run", "retail")
    assert code == 0, err
    assert loaded == set(), f"`lakebox run retail` imported {loaded}"
