"""`lakebox bench`: the orders pipeline beside its floor, plus the targets the issues name.

Every scenario runs in its own process (peak RSS per stage is then honest) in a scratch
home. Results print as tables and, with --record, replace docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    if text[-1:] in SUFFIXES:
        return int(float(text[:-1]) * SUFFIXES[text[-1]])
    return int(text)


def human(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def _worker(scenario: str, env: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "lakebox.bench.worker", scenario, orjson.dumps(kwargs).decode()],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench scenario {scenario} failed:\n{proc.stderr[-3000:]}")
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("status", "success") != "success":
        raise RuntimeError(f"bench scenario {scenario} ended {result['status']}: {result.get('error')}")
    return dict(result)


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A scratch home's environment; every home of one bench shares one machine cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
    env.update(LAKEBOX_HOME=str(home), LAKEBOX_CACHE_DIR=str(home.parent / "machine-cache"), **extra)
    return env


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def bench_orders(size: int, root: Path, incremental: bool = True) -> dict[str, Any]:
    home = root / f"orders-{human(size)}"
    env = _env(home)
    _say(f"orders {human(size)}: writing {size:,} orders to the lake …")
    prep = _worker("prepare", env, count=size)
    _say(f"orders {human(size)}: pipeline …")
    pipe = _worker("pipeline", env)
    _say(f"orders {human(size)}: floor …")
    floor = _worker("floor", env, files=prep["files"], rows=size)
    result = {"size": size, "prepare": prep["seconds"], "pipeline": pipe, "floor": floor}
    if incremental:
        extra = size // 100
        _say(f"orders {human(size)}: incremental run adding 1% ({extra:,} orders) …")
        prep2 = _worker("prepare", env, count=size + extra, previous=size)
        result["incremental"] = {"rows": prep2["rows"], **_worker("pipeline", env)}
        _say(f"orders {human(size)}: incremental run adding 1% more, in a warm process as `lakebox watch` runs it …")
        prep3 = _worker("prepare", env, count=size + 2 * extra, previous=size + extra)
        result["incremental_warm"] = {"rows": prep3["rows"], **_worker("pipeline", env, warm=True)}
    return result


def bench_http(size: int, root: Path) -> dict[str, Any]:
    _say(f"orders over HTTP {human(size)} …")
    return {"size": size, **_worker("pipeline", _env(root / f"http-{human(size)}"), with_fetch=True, api_orders=size)}


def bench_cli(size: int, root: Path) -> dict[str, Any]:
    _say(f"`lakebox run orders` with {size:,} orders, start-up included …")
    walls = {}
    for name, cache in (("cold", "off"), ("seeded", None)):
        env = _env(root / f"cli-{human(size)}-{name}", LAKEBOX_DEMO_ORDERS=str(size), LAKEBOX_LOG_LEVEL="WARNING")
        if cache:
            env["LAKEBOX_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "lakebox.cli", "run", "orders"], env=env, capture_output=True, text=True)
        walls[name] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"lakebox run orders failed:\n{proc.stderr[-3000:]}")
    return {"size": size, "seconds": walls["seeded"], "cold_seconds": walls["cold"]}


def bench_postgres(size: int, root: Path, admin_dsn: str) -> dict[str, Any]:
    import uuid

    import psycopg

    name = f"lakebox_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as con:
        con.execute(f'create database "{name}"')
    try:
        env = _env(root / f"pg-{human(size)}", LAKEBOX_WAREHOUSE=admin_dsn.rsplit("/", 1)[0] + f"/{name}")
        _say(f"orders {human(size)} on PostgreSQL …")
        _worker("prepare", env, count=size)
        result = {"size": size, **_worker("pipeline", env)}
        _say(f"COPY of {human(size)} orders-shaped rows into PostgreSQL …")
        result["copy"] = _worker("copy_load", env, count=size)
        return result
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')


def bench_s3(size: int, root: Path) -> dict[str, Any]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench-secret").create_bucket(Bucket="bench")
        env = _env(root / f"s3-{human(size)}", LAKEBOX_LAKE="s3://bench/lake", **aws)
        os.environ.update(aws)
        _say(f"orders {human(size)} with the lake on S3 (moto on loopback) …")
        _worker("prepare", env, count=size)
        return {"size": size, **_worker("pipeline", env)}
    finally:
        server.stop()


def bench_retail(root: Path, stores: int = 150, months: int = 6, seed: int = 7) -> dict[str, Any]:
    """150 stores × 6 months from landing to marts, then one more day's drop alone, through
    the real CLI in a fresh process (start-up and dbt included); then one more day again,
    dropped while `lakebox watch` is up (dbt already warm), timed from the drop to the marts."""
    import shutil

    from lakebox.pipelines.retail.generator import generate_drops

    home = root / "retail"
    source = root / "retail-drop"
    generate_drops(str(source), stores=stores, months=months, seed=seed, start=None)
    files = sorted(p.name for p in source.iterdir())
    days = sorted({f.rsplit("_", 1)[-1] for f in files if f != "stores.csv"})
    held_back = {"day": days[-2], "watch": days[-1]}
    landing = home / "landing" / "retail"
    landing.mkdir(parents=True)
    for name in files:
        if not name.endswith(tuple(held_back.values())):
            shutil.copy(source / name, landing / name)
    env = _env(home, LAKEBOX_LOG_LEVEL="WARNING")
    result: dict[str, Any] = {"stores": stores, "months": months, "files": len(files)}
    for phase in ("full", "day"):
        if phase == "day":
            for name in files:
                if name.endswith(held_back["day"]):
                    shutil.copy(source / name, landing / name)
        _say(f"retail {stores} stores × {months} months: {'landing to marts' if phase == 'full' else 'a new day'} …")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "lakebox.cli", "run", "retail"], env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"lakebox run retail failed:\n{proc.stderr[-3000:]}")
        result[phase] = {"wall": wall, "stages": _last_run_stages(env)}
    _say("retail: a new day dropped while `lakebox watch retail` is up …")
    result["watch"] = _bench_watch_day(env, source, landing, [f for f in files if f.endswith(held_back["watch"])])
    return result


def _bench_watch_day(env: dict[str, str], source: Path, landing: Path, names: list[str]) -> dict[str, Any]:
    """Start the watcher, let it catch up, drop a day (each file renamed into place), and
    time until it reports the run that took the day to the marts."""
    import shutil
    import signal

    watch_env = {**env, "LAKEBOX_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen([sys.executable, "-m", "lakebox.cli", "watch", "retail", "--poll", "0.05"],
                            env=watch_env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    stderr = proc.stderr
    assert stderr is not None  # stderr=PIPE

    def next_run() -> dict[str, Any]:
        for line in stderr:
            if line.startswith("{"):
                event = orjson.loads(line)
                if event.get("msg") == "watch run finished":
                    return dict(event)
        raise RuntimeError(f"lakebox watch ended before a run finished (exit {proc.wait()})")

    try:
        t_start = time.perf_counter()
        catch_up = next_run()  # the run at start: nothing new since the CLI runs
        ready = time.perf_counter() - t_start
        for name in names:
            shutil.copy(source / name, landing / f".{name}.part")
        t0 = time.perf_counter()
        for name in names:
            (landing / f".{name}.part").rename(landing / name)
        event = next_run()
        latency = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    if event.get("status") != "success":
        raise RuntimeError(f"the watched retail run failed: {event.get('error')}")
    return {"startup": ready, "catch_up_status": catch_up.get("status"), "latency": latency,
            "run": event["seconds"], "stages": _last_run_stages(env)}


def _last_run_stages(env: dict[str, str]) -> list[dict[str, Any]]:
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ops import audit

    with open_warehouse(Settings.load(env=env), read_only=True) as wh:
        latest = audit.recent_runs(wh, 1)
        stages = audit.stage_runs(wh, latest[0][0]) if latest else []
    rows = [(stage, seconds, max(rows_in or 0, rows_out or 0)) for stage, _, _, seconds, rows_in, rows_out, _ in stages]
    return [{"stage": s, "seconds": d, "rows": r} for s, d, r in rows]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}"


def run_bench(
    sizes: list[int],
    http_size: int,
    cli_size: int,
    postgres_size: int,
    s3_size: int,
    retail: bool,
    postgres_dsn: str | None,
    record: Path | None,
    workdir: Path | None = None,
    serve: bool = False,
    observability: bool = False,
    pipeline_sizes: dict[str, int] | None = None,
    project: bool = False,
    lineage: bool = False,
) -> str:
    """Run every scenario; return the report as markdown (and write it to `record`).
    `pipeline_sizes`: the size for each pipeline's own scenario (named in its spec; 0 or
    absent skips it)."""
    from lakebox.bench.report import render
    from lakebox.bench.scenario import scenarios

    results: dict[str, Any] = {"machine": machine(), "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    with tempfile.TemporaryDirectory(prefix="lakebox-bench-", dir=workdir) as tmp:
        root = Path(tmp)
        _say("dbt: first parse of the project on this (scratch) machine cache …")
        results["first_parse"] = _worker("parse", _env(root / "first-parse"))["seconds"]
        results["orders"] = [bench_orders(n, root) for n in sizes]
        if http_size:
            results["http"] = bench_http(http_size, root)
        if cli_size:
            results["cli"] = bench_cli(cli_size, root)
        if postgres_size and postgres_dsn:
            results["postgres"] = bench_postgres(postgres_size, root, postgres_dsn)
        if retail:
            results["retail"] = bench_retail(root)
        for pipeline, scenario in scenarios():
            if size := (pipeline_sizes or {}).get(pipeline, 0):
                results[scenario.key] = scenario.run(size, root)
        if s3_size:
            results["s3"] = bench_s3(s3_size, root)
            local = next((r for r in results["orders"] if r["size"] == s3_size), None)
            results["s3_local"] = local["pipeline"] if local else bench_orders(s3_size, root, incremental=False)["pipeline"]
        if observability:  # issue 12
            from lakebox.bench.observability import bench_observability

            results["observability"] = bench_observability(http_size, root)
        if serve:  # issue 11
            from lakebox.bench.serve import bench_issue11

            results["serve"] = bench_issue11(root)
        if lineage:  # issue 22
            from lakebox.bench.lineage import bench_lineage

            results["lineage"] = bench_lineage(root)
        if project:  # issues 19 and 20: a project of 20 coded, and one of 50 declared pipelines
            from lakebox.bench.check import bench_check
            from lakebox.bench.project import bench_project

            results["project"] = bench_project(root)
            results["check"] = bench_check(root)
        if http_size and project:  # issue 20: a declared REST pipeline beside orders, the same API
            from lakebox.bench.declarative import bench_declarative

            results["declarative"] = bench_declarative(root, http_size)
    markdown = render(results)
    if record:
        record.write_text(markdown)
        (record.with_suffix(".json")).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return markdown
