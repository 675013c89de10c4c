"""`lakebox run` as a person sees it on an 80-column terminal, and as CI reads it from a pipe."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from tests.conftest import run_cli
from tests.terminal import run_in_terminal

pytestmark = pytest.mark.slow
SPINNER = tuple("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


@pytest.fixture
def retail_drop(lakebox_env: dict[str, str]) -> dict[str, str]:
    """A month of three stores' drops, one inventory file with a renamed column (quarantined)."""
    made = run_cli("retail-generate", "--stores", "3", "--months", "1", env=lakebox_env)
    assert made.returncode == 0, made.stderr
    landing = Path(lakebox_env["LAKEBOX_HOME"]) / "landing" / "retail"
    bad = sorted(landing.glob("inventory_*.csv"))[-1]
    bad.write_bytes(bad.read_bytes().replace(b"on_hand_units", b"units_on_hand", 1))
    return {**lakebox_env, "BAD_FILE": bad.name}


def _settled(screen: str) -> list[str]:
    """The lines left on the terminal: the spinner's redraws are gone once the run ends."""
    return [line.split("\r")[-1] for line in screen.splitlines() if not line.split("\r")[-1].startswith(SPINNER)]


def test_a_run_on_a_terminal_shows_stages_dbt_progress_human_warnings_and_a_summary(
        retail_drop: dict[str, str]) -> None:
    code, screen = run_in_terminal("run", "retail", env=retail_drop, columns=80)
    assert code == 4, screen[-3000:]
    assert '{"ts"' not in screen, "no JSON log line on the terminal"
    lines = _settled(screen)
    for stage in ("land", "load", "transform", "snapshot"):
        assert any(line.startswith(f"✓ retail {stage} ") for line in lines), screen[-3000:]
    counts = [tuple(map(int, m)) for m in re.findall(r"dbt (?:model|test) \S+ .*? (\d+)/(\d+)", screen)]
    assert counts and len({total for _, total in counts}) == 1 and counts[0][1] > 5, "dbt's node n of N"
    assert max(n for n, _ in counts) > min(n for n, _ in counts), "the count moves during dbt"
    warnings = [line for line in lines if line.startswith("warning: retail")]
    assert warnings and all(not line.rstrip().endswith("}") for line in warnings)
    assert any(retail_drop["BAD_FILE"] in line or "quarantine" in line for line in warnings), warnings
    [summary] = [line for line in lines if re.match(r"retail +partial .*retail-\d{8}T\d{6}-[0-9a-f]{6}$", line)]
    assert len(summary) <= 80, "the summary row fits, its run id whole"
    log_dir = Path(retail_drop["LAKEBOX_HOME"]) / "logs"
    events = [orjson.loads(line) for f in log_dir.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert {"stage finished", "run finished"} <= {e["msg"] for e in events}, "the JSON lines went to the log file"

    code, quiet = run_in_terminal("run", "retail", "--quiet", env=retail_drop, columns=80)
    assert code == 4 and "✓" not in quiet and "lakebox run" not in quiet and "warning:" not in quiet
    assert "retail partial:" in quiet and retail_drop["BAD_FILE"] in quiet, "what needs a person is still said"
    code, verbose = run_in_terminal("run", "retail", "--verbose", env=retail_drop, columns=80)
    assert code == 4 and "info: retail land: stage started" in verbose
    code, as_json = run_in_terminal("run", "retail", "--log-format", "json", env=retail_drop, columns=80)
    json_lines = [line for line in as_json.splitlines() if line.startswith('{"ts"')]
    assert code == 4 and json_lines and all(orjson.loads(line)["level"] for line in json_lines)
    assert "✓" not in as_json


def test_a_piped_run_writes_json_log_lines_to_stderr_and_no_progress(retail_drop: dict[str, str]) -> None:
    result = run_cli("run", "retail", env={**retail_drop, "COLUMNS": "80"})
    assert result.returncode == 4, result.stderr[-3000:]
    events = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"stage started", "stage finished", "run finished"} <= {e["msg"] for e in events}
    assert "✓" not in result.stderr and not any(c in result.stderr for c in SPINNER)
    header = result.stderr.splitlines().index("pipeline\tstatus\tseconds\trows in\trows out\tquarantined\trun id")
    assert result.stderr.splitlines()[header + 1].startswith("retail\tpartial\t"), "the summary, tab-separated"
