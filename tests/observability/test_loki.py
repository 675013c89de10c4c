"""Logs pushed to Loki (a loopback stub that records pushes): format, labels, batching,
and a Loki that is down or failing costs nothing but a warning; the files stay complete."""

from __future__ import annotations

import time

import orjson
import pytest

from lakebox.log import get_logger, log_context
from lakebox.observability import configure, stop_log_shipping
from lakebox.settings import Settings
from tests.observability.conftest import Receiver, free_port, pipeline, run_script, with_env


def file_lines(settings: Settings) -> list[dict]:
    return [orjson.loads(line) for p in sorted(settings.logs_dir.glob("*.jsonl"))
            for line in p.read_text().splitlines()]


def log_lines(n: int, run_id: str = "alpha-run-1") -> None:
    log = get_logger()
    with log_context(run_id=run_id, pipeline="alpha", stage="ingest"):
        for i in range(n):
            log.warning("landed batch", n=i)


def pushes(receiver: Receiver) -> list[dict]:
    return [orjson.loads(body) for body in receiver.bodies()]


def test_lines_are_pushed_in_batches_with_labels_and_run_id_as_metadata(settings: Settings, receiver: Receiver) -> None:
    configure(with_env(settings, LAKEBOX_LOKI_URL=receiver.url, LAKEBOX_LOKI_BATCH="10", LAKEBOX_LOKI_INTERVAL="30"))
    log_lines(25)
    with log_context(pipeline="alpha", stage="ingest"):
        get_logger().error("source down")
    assert stop_log_shipping() == 0
    assert {path for path, _, _ in receiver.requests} == {"/loki/api/v1/push"}
    assert all(h.get("Content-Type") == "application/json" for _, h, _ in receiver.requests)
    bodies = pushes(receiver)
    assert 3 <= len(bodies) <= 5, "25 + 1 lines in batches of at most 10"
    values = [(s["stream"], v) for b in bodies for s in b["streams"] for v in s["values"]]
    assert all(sum(len(s["values"]) for s in b["streams"]) <= 10 for b in bodies)
    assert len(values) == 26
    warned = [(stream, v) for stream, v in values if orjson.loads(v[1])["msg"] == "landed batch"]
    assert {orjson.dumps(s) for s, _ in warned} == {orjson.dumps(
        {"app": "lakebox", "pipeline": "alpha", "stage": "ingest", "level": "warning"})}
    assert all(v[2] == {"run_id": "alpha-run-1"} for _, v in warned), "run_id is metadata, not a label"
    error = [(s, v) for s, v in values if s["level"] == "error"]
    assert len(error) == 1 and len(error[0][1]) == 2, "no run_id, no metadata"
    assert [orjson.loads(v[1])["n"] for _, v in warned] == list(range(25)), "in order, none lost"
    shipped = [v[1] for _, v in values]
    assert shipped == [orjson.dumps(line).decode() for line in file_lines(settings)], "same lines as the file"
    assert all(int(v[0]) > 1e18 for _, v in values), "nanosecond timestamps as strings"


@pytest.mark.parametrize("loki", ["down", "500", "slow"])
def test_a_loki_that_is_down_failing_or_slow_never_blocks_and_the_files_keep_every_line(
        settings: Settings, receiver: Receiver, loki: str) -> None:
    url = f"http://127.0.0.1:{free_port()}" if loki == "down" else receiver.url
    receiver.statuses.extend([500] * 100)
    receiver.delay = 6.0 if loki == "slow" else 0.0
    configure(with_env(settings, LAKEBOX_LOKI_URL=url, LAKEBOX_LOKI_BATCH="50", LAKEBOX_LOKI_INTERVAL="0.05",
                       LAKEBOX_LOKI_ATTEMPTS="2", LAKEBOX_LOKI_TIMEOUT="10"))
    started = time.monotonic()
    log_lines(200)
    assert time.monotonic() - started < 4.0, "emitting never waits for Loki (a slow push takes 6 s)"
    outcome = run_script(settings, [("alpha", False)])[0]
    assert outcome.status == "success"
    unshipped = stop_log_shipping(timeout=3)
    lines = file_lines(settings)
    ours = [line for line in lines if line["msg"] == "landed batch"]
    assert [line["n"] for line in ours] == list(range(200)), "the file logs are complete"
    assert unshipped >= 200
    warning = [line for line in lines if line["msg"].startswith("log lines not shipped to Loki")]
    assert len(warning) == 1 and warning[0]["unshipped"] == unshipped
    if loki != "down":
        assert len(receiver.requests) >= 1, "it did try"


def test_the_buffer_is_bounded_and_drops_the_oldest(settings: Settings, receiver: Receiver) -> None:
    receiver.statuses.extend([500] * 1000)
    configure(with_env(settings, LAKEBOX_LOKI_URL=receiver.url, LAKEBOX_LOKI_BUFFER="50", LAKEBOX_LOKI_BATCH="1000",
                       LAKEBOX_LOKI_INTERVAL="30"))
    log_lines(500)
    unshipped = stop_log_shipping(timeout=3)
    assert unshipped == 500
    sent = [orjson.loads(v[1])["n"] for b in pushes(receiver) for s in b["streams"] for v in s["values"]]
    assert set(sent) <= set(range(450, 500)), "what was still buffered is the newest"
    assert len([line for line in file_lines(settings) if line["msg"] == "landed batch"]) == 500


def test_a_run_with_loki_configured_ships_its_stage_lines(settings: Settings, receiver: Receiver) -> None:
    from lakebox.lake import Lake
    from lakebox.log import configure_logging
    from lakebox.runner import run_pipeline
    from lakebox.warehouse import open_warehouse

    configure_logging(settings.logs_dir, "WARNING")  # what `lakebox run` does, then:
    configure(with_env(settings, LAKEBOX_LOKI_URL=receiver.url + "/", LAKEBOX_LOKI_INTERVAL="0.05"))
    with open_warehouse(settings) as wh:
        outcome = run_pipeline(pipeline("alpha"), settings, Lake.from_settings(settings), wh)
    assert stop_log_shipping() == 0
    streams = [s for b in pushes(receiver) for s in b["streams"]]
    stages = {s["stream"].get("stage") for s in streams}
    assert {"ingest", "transform"} <= stages
    assert {v[2]["run_id"] for s in streams for v in s["values"] if len(v) == 3} == {outcome.run_id}
