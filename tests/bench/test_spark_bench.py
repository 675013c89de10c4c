"""The Spark bench's per-model figures come from dbt's own log of each build."""

from __future__ import annotations

from pathlib import Path

from lakebox.bench.spark import dbt_seconds

LOG = """\
14:26:41.045955 [info ] [Thread-3 (]: 1 of 4 START sql table model staging.stg_orders ........ [RUN]
14:27:26.499909 [info ] [Thread-3 (]: 1 of 4 OK created sql table model staging.stg_orders ... [OK in 45.44s]
14:27:32.146861 [info ] [Thread-3 (]: 2 of 4 PASS accepted_values_stg_orders_status__placed .. [PASS in 5.64s]
14:27:34.304406 [info ] [Thread-3 (]: 3 of 4 PASS non_negative_stg_orders_amount ............. [PASS in 2.16s]
14:27:55.995932 [info ] [Thread-3 (]: 4 of 4 OK created sql incremental model analytics.daily_order_metrics [OK in 9.54s]
"""


def test_seconds_per_model_and_for_all_tests(tmp_path: Path) -> None:
    (tmp_path / "dbt" / "logs").mkdir(parents=True)
    (tmp_path / "dbt" / "logs" / "dbt.log").write_text(LOG)
    assert dbt_seconds(tmp_path) == {"staging.stg_orders": 45.44, "tests": 7.8, "analytics.daily_order_metrics": 9.54}
    assert dbt_seconds(tmp_path / "none") == {}


def test_each_build_of_a_log_apart(tmp_path: Path) -> None:
    """The bench builds twice in one process: one log, a header line per dbt invocation."""
    header = "\n============================== 14:26:40.1 | 6e0c-{} ==============================\n"
    second = LOG.replace("45.44", "12.5").replace("5.64", "1.0")
    (tmp_path / "dbt" / "logs").mkdir(parents=True)
    (tmp_path / "dbt" / "logs" / "dbt.log").write_text(
        header.format(1) + "14:26:40.2 [info ] [MainThread]: Running with dbt=1.11.16\n"  # a parse: no nodes
        + header.format(2) + LOG + header.format(3) + second)
    assert dbt_seconds(tmp_path) == {"staging.stg_orders": 12.5, "tests": 3.16, "analytics.daily_order_metrics": 9.54}
    assert dbt_seconds(tmp_path, -2)["staging.stg_orders"] == 45.44
