"""Column lineage, events and the catalog on Spark, which has no information_schema: a real
`lakebox run orders` on a local standalone cluster."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.warehouse.conftest import JVM_OPTIONS, env_for, need_spark

pytestmark = pytest.mark.slow
MART = "analytics.daily_order_metrics"


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    need_spark()
    from lakebox.warehouse.spark_cluster import LocalCluster

    root = tmp_path_factory.mktemp("spark-lineage")
    with LocalCluster(root / "cluster", workers=1, env=JVM_OPTIONS) as cluster:
        env = env_for(root / "home", LAKEBOX_DEMO_ORDERS="200", LAKEBOX_WAREHOUSE=cluster.url, PWD=str(root))
        run = run_cli("run", "orders", env=env, timeout=900)
        assert run.returncode == 0, run.stderr[-4000:]
        yield root / "home", env


def test_on_spark_models_carry_their_columns_and_column_lineage(spark_home: tuple[Path, dict[str, str]]) -> None:
    home, env = spark_home
    events = [json.loads(line) for line in (home / "lineage" / "events.jsonl").read_text().splitlines()]
    [done] = [e for e in events if e["job"]["name"] == f"orders.transform.{MART}" and e["eventType"] == "COMPLETE"]
    [out] = done["outputs"]
    assert "total_amount" in {f["name"] for f in out["facets"]["schema"]["fields"]}
    assert [f["field"] for f in out["facets"]["columnLineage"]["fields"]["total_amount"]["inputFields"]] == ["amount"]
    [load] = [e for e in events if e["job"]["name"] == "orders.load" and e["eventType"] == "COMPLETE"]
    assert [d["name"] for d in load["outputs"]] == ["raw.orders"], "the raw table found without information_schema"

    up = run_cli("lineage", f"{MART}.total_amount", env=env, timeout=300)
    assert up.returncode == 0, up.stderr[-3000:]
    assert "    <- raw.orders.amount  [TRANSFORMATION]" in up.stdout.splitlines()


def test_on_spark_the_catalog_lists_every_table_with_its_types(spark_home: tuple[Path, dict[str, str]],
                                                                tmp_path: Path) -> None:
    _, env = spark_home
    site = tmp_path / "site"
    result = run_cli("catalog", "--export", str(site), env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    pages: dict[str, Any] = {p.name: p.read_text() for p in site.glob("*.html")}
    assert {"index.html", "raw.orders.html", "staging.stg_orders.html", f"{MART}.html"} <= set(pages)
    typed = re.search(r"<tr id='total_amount'><td>total_amount</td><td>([^<]*)</td>", pages[f"{MART}.html"])
    assert typed is not None and typed.group(1).startswith("decimal"), "the column's type, read off an empty select"
