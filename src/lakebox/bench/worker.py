"""One benchmark scenario per process, so each stage's peak RSS is its own.

`python -m lakebox.bench.worker SCENARIO JSON-ARGS` prints one JSON line of results.
Settings come from the environment the parent sets (LAKEBOX_HOME, _WAREHOUSE, _LAKE).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

SEED = 2026
PAGE_ROWS = 100_000


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each stage reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _parts() -> tuple[Any, Any, Any]:
    from lakebox.lake import Lake
    from lakebox.log import configure_logging
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    configure_logging(settings.logs_dir, "WARNING")
    return settings, Lake.from_settings(settings), open_warehouse(settings)


def prepare(count: int, previous: int = 0) -> dict[str, Any]:
    """Write API-shaped pages straight to the lake and the ledger (what fetch would do).

    With `previous`, only the orders new or updated since a run over `previous` orders."""
    from lakebox.pipelines.orders.generator import generate_orders, page_bytes
    from lakebox.warehouse import ops

    settings, lake, wh = _parts()
    t0 = time.perf_counter()
    table = generate_orders(count, SEED)
    start = 0
    if previous:
        import pyarrow.compute as pc

        old_max = generate_orders(previous, SEED).column("updated_at")
        start = int(pc.sum(pc.less_equal(table.column("updated_at"), pc.max(old_max))).as_py())
    pages = rows = 0
    with wh.transaction():
        for offset in range(start, table.num_rows, PAGE_ROWS):
            body = page_bytes(table, offset, PAGE_ROWS)
            n = min(PAGE_ROWS, table.num_rows - offset)
            manifest = lake.land_batch("orders", body, "json", rows=n, meta={"bench": True})
            ops.record_landed(wh, manifest, "bench-prepare")
            pages, rows = pages + 1, rows + n
    wh.close()
    files = sorted(str(p) for p in Path(lake.root).glob("raw/orders/*/*.json") if not p.name.endswith(".manifest.json"))
    return {"rows": rows, "pages": pages, "seconds": time.perf_counter() - t0, "files": files if lake.is_local else []}


def pipeline(with_fetch: bool = False, api_orders: int = 0, name: str = "orders", warm: bool = False,
             again: Sequence[str] = ()) -> dict[str, Any]:
    """Run a pipeline (orders: optionally with its HTTP fetch) and time each stage. `warm`:
    as a run of `lakebox watch` does, with dbt imported and the project parsed beforehand.
    `again` (tables: the raw ones and every model the run builds): then drop them, mark the
    run's batches landed again and run once more in this process, as a watcher's later run
    over the same input would; that second run is the result, the first is under "first"."""
    import os

    from lakebox.pipelines import get_pipeline, get_spec
    from lakebox.runner import Pipeline, Stage, run_pipeline

    if api_orders:
        os.environ["LAKEBOX_DEMO_ORDERS"] = str(api_orders)
    settings, lake, wh = _parts()
    peaks: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def measured(stage: Stage) -> Stage:
        def fn(ctx: Any) -> Any:
            reset_peak_rss()
            started = time.process_time()
            try:
                return stage.fn(ctx)
            finally:
                peaks[stage.name] = peak_rss_mb()
                cpu[stage.name] = time.process_time() - started  # every thread of the process
        return dataclasses.replace(stage, fn=fn)

    stages = [s for s in get_pipeline(name).stages if with_fetch or s.name != "fetch"]
    if warm:
        from lakebox.transform.dbt import parse_project

        wh.release()
        parse_project(settings)
    def timed(wh: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        outcome = run_pipeline(Pipeline(name, tuple(measured(s) for s in stages)), settings, lake, wh)
        total = time.perf_counter() - t0
        wh.close()
        return {
            "status": outcome.status,
            "error": outcome.error,
            "seconds": total,
            "stages": [
                {"stage": name, "seconds": secs, "rows": max(rows_in, rows_out), "peak_rss_mb": peaks.get(name, 0.0),
                 "cpu_seconds": cpu.get(name, 0.0)}
                for name, _status, secs, rows_in, rows_out in outcome.stages
            ],
        }

    result = timed(wh)
    if not again or result["status"] != "success":
        return result
    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import ledger

    with open_warehouse(settings) as wh:
        for table in again:
            wh.execute(f"drop table if exists {table}")
        loaded = [b[0] for source in get_spec(name).sources for b in ledger.recorded_batches(wh, source)
                  if b[5] == ledger.LOADED]
        ledger.mark_batches(wh, loaded, ledger.LANDED)
    return {**timed(open_warehouse(settings)), "first": result}


def parse() -> dict[str, Any]:
    """dbt's first parse of the project into an empty machine cache (import included)."""
    from lakebox.transform.dbt import parse_project

    settings, _lake, wh = _parts()
    wh.close()
    t0 = time.perf_counter()
    parse_project(settings)
    return {"seconds": time.perf_counter() - t0}


def floor(files: list[str], rows: int) -> dict[str, Any]:
    """The same work as one plain DuckDB script over the same lake files."""
    import tempfile

    import duckdb

    from lakebox.bench.floor import floor_steps
    from lakebox.warehouse.duckdb import CONNECTION_SETTINGS

    with tempfile.TemporaryDirectory() as tmp:
        # The floor may use the whole 2 GB budget the pipeline is held to.
        con = duckdb.connect(f"{tmp}/floor.duckdb", config={**CONNECTION_SETTINGS, "memory_limit": "2GB"})
        stages = []
        t_all = time.perf_counter()
        for name, sql in floor_steps(files, f"{tmp}/daily.parquet"):
            reset_peak_rss()
            t0 = time.perf_counter()
            for statement in [s for s in sql.split(";") if s.strip()]:
                con.execute(statement).fetchall()
            stages.append({"stage": name, "seconds": time.perf_counter() - t0, "rows": rows,
                           "peak_rss_mb": peak_rss_mb()})
        total = time.perf_counter() - t_all
        con.close()
    return {"status": "success", "seconds": total, "stages": stages}


def copy_load(count: int) -> dict[str, Any]:
    """The bulk path alone: `count` orders-shaped rows from DuckDB into the warehouse table
    (COPY on PostgreSQL), one transaction, as a batch load does after its checks."""
    from lakebox.pipelines.orders.fetch import contract
    from lakebox.pipelines.orders.generator import generate_orders

    CONTRACT = contract()

    settings, _lake, wh = _parts()
    table = generate_orders(count, SEED)
    scratch = wh.scratch()
    scratch.register("bench_orders", table)
    wh.execute(CONTRACT.raw_ddl().replace("raw.orders", "raw.copy_bench"))
    select = ("select order_id, customer_id, cast(amount as double) as amount, currency, status, "
              "timezone('UTC', created_at) as created_at, timezone('UTC', updated_at) as updated_at, "
              "'bench' as batch_id, timestamp '2026-01-01' as ingested_at, 'bench' as lake_path from bench_orders")
    t0 = time.perf_counter()
    with wh.transaction():
        rows = wh.load_from_scratch(select, "raw.copy_bench", CONTRACT.raw_columns)
    seconds = time.perf_counter() - t0
    wh.close()
    return {"rows": rows, "seconds": seconds}


def ml(commits: int) -> dict[str, Any]:
    """The commit classifier's training and inference targets (`lakebox.bench.ml`)."""
    from lakebox.bench.ml import bench_ml

    return bench_ml(commits=commits)


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "parse": parse, "prepare": prepare, "pipeline": pipeline, "floor": floor, "copy_load": copy_load, "ml": ml,
}

if __name__ == "__main__":
    result = SCENARIOS[sys.argv[1]](**orjson.loads(sys.argv[2] if len(sys.argv) > 2 else "{}"))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
