"""The key tests of the bundled models: stg_orders' uniqueness test checks the keys a build
can have duplicated (not all 10M), and primary_key catches both null and repeated keys."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from lakebox.errors import TransformError
from lakebox.settings import Settings
from lakebox.transform.dbt import run_dbt
from lakebox.warehouse import open_warehouse
from tests.conftest import run_cli

TEST_NAME = "unique_in_new_batches_stg_orders_order_id"


@pytest.fixture
def built(lakebox_env: dict[str, str]) -> Path:
    result = run_cli("run", "orders", env={**lakebox_env, "LAKEBOX_DEMO_ORDERS": "300"})
    assert result.returncode == 0, result.stderr
    return Path(lakebox_env["LAKEBOX_HOME"])


def duplicate_an_order(home: Path, new_batch: bool) -> str:
    """Copy one built order under its own key, as a faulty build would; the copy comes from
    a batch loaded just now (new_batch) or from the batch of the original row."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        order_id, batch_id = con.execute("select order_id, _batch_id from staging.stg_orders limit 1").fetchone()
        copy_batch = "test-new-batch" if new_batch else batch_id
        con.execute("insert into staging.stg_orders select * replace (? as _batch_id) from staging.stg_orders "
                    "where order_id = ?", [copy_batch, order_id])
        if new_batch:
            con.execute("insert into ops.batches (batch_id, source, lake_path, sha256, status, landed_at, loaded_at) "
                        "values (?, 'orders', 'raw/orders/x.json', '', 'loaded', ?, ?)",
                        [copy_batch, dt.datetime.now(dt.UTC).replace(tzinfo=None),
                         dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=1)])
    return order_id


def dbt_test_stg_orders(home: Path, model: str = "stg_orders") -> None:
    """`dbt test --select <model>`, in-process, as the transform stage runs it."""
    settings = Settings.load(env={**os.environ, "LAKEBOX_HOME": str(home)})
    with open_warehouse(settings) as wh:
        run_dbt(settings, wh, [model], command="test")


def test_a_row_from_a_new_batch_duplicating_an_old_key_fails_the_build(built: Path) -> None:
    dbt_test_stg_orders(built)  # clean
    duplicate_an_order(built, new_batch=True)
    with pytest.raises(TransformError, match=TEST_NAME):
        dbt_test_stg_orders(built)


def test_keys_are_checked_again_until_a_transform_succeeds(built: Path) -> None:
    duplicate_an_order(built, new_batch=False)
    dbt_test_stg_orders(built)  # both rows come from batches a passing transform already checked
    with duckdb.connect(str(built / "warehouse.duckdb")) as con:
        con.execute("update ops.stage_runs set status = 'failed' where stage = 'transform'")
    with pytest.raises(TransformError, match=TEST_NAME):
        dbt_test_stg_orders(built)


@pytest.mark.parametrize("broken", ["null", "repeated"])
def test_primary_key_catches_null_and_repeated_keys(built: Path, broken: str) -> None:
    dbt_test_stg_orders(built, "daily_order_metrics")  # clean
    with duckdb.connect(str(built / "warehouse.duckdb")) as con:
        key = "null" if broken == "null" else "order_date"
        con.execute(f"insert into analytics.daily_order_metrics select * replace ({key} as order_date) "
                    "from analytics.daily_order_metrics limit 1")
    with pytest.raises(TransformError, match="primary_key_daily_order_metrics_order_date"):
        dbt_test_stg_orders(built, "daily_order_metrics")
