"""The before/after bench: medians of alternating rounds, and clear usage errors."""

from __future__ import annotations

import subprocess
import sys

from lakebox.bench.compare import table


def test_the_table_gives_medians_and_their_ratio() -> None:
    runs = {"before": [{"wall": 5.0, "cpu": 4.0}, {"wall": 9.0, "cpu": 4.2}, {"wall": 6.0, "cpu": 4.1}],
            "after": [{"wall": 6.3, "cpu": 4.0}, {"wall": 6.2, "cpu": 3.9}, {"wall": 20.0, "cpu": 4.4}]}
    text = table({"before": "abc1234", "after": "def5678", "rounds": 3, "figures": {"orders-1k": runs}})
    assert "before = abc1234, after = def5678" in text and "3 alternating rounds" in text
    assert "| orders-1k | wall s | 6.00 | 6.30 | 1.050 |" in text  # an outlier round moves no median
    assert "| orders-1k | cpu s | 4.10 | 4.00 | 0.976 |" in text


def test_an_unknown_scenario_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "lakebox.bench.compare", "HEAD", "--scenarios", "orders-2k"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "unknown scenario(s) ['orders-2k']" in proc.stderr and "retail-day" in proc.stderr
