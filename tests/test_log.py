"""Log files: one JSON-lines file per day, also for a process that runs past midnight."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import orjson

from lakebox.log import DailyFileHandler, JsonLinesFormatter, get_logger


def record(msg: str, when: dt.datetime) -> logging.LogRecord:
    rec = logging.LogRecord("lakebox", logging.INFO, __file__, 1, msg, None, None)
    rec.created = when.timestamp()
    return rec


def test_a_long_lived_process_moves_to_the_next_days_file(tmp_path: Path) -> None:
    handler = DailyFileHandler(tmp_path)
    handler.setFormatter(JsonLinesFormatter())
    before = dt.datetime(2026, 11, 22, 23, 59, 59)
    handler.emit(record("late", before))
    handler.emit(record("after midnight", before + dt.timedelta(seconds=2)))
    handler.emit(record("later", before + dt.timedelta(hours=3)))
    handler.close()
    files = {p.name: [orjson.loads(line)["msg"] for line in p.read_text().splitlines()] for p in tmp_path.iterdir()}
    assert files == {"lakebox-2026-11-22.jsonl": ["late"], "lakebox-2026-11-23.jsonl": ["after midnight", "later"]}


def _fail_deep_inside(url: str) -> None:
    raise KeyError(f"no route to {url}")


def test_an_unexpected_error_is_logged_with_its_whole_traceback_and_no_secret(tmp_path: Path) -> None:
    handler = DailyFileHandler(tmp_path)
    handler.setFormatter(JsonLinesFormatter())
    logger = logging.getLogger("lakebox")
    logger.addHandler(handler)
    try:
        try:
            _fail_deep_inside("postgresql://lakebox:hunter2@db:5432/lakebox")
        except KeyError:
            get_logger().error("stage failed", exc_info=True, stage="load")
    finally:
        logger.removeHandler(handler)
        handler.close()
    [path] = tmp_path.iterdir()
    [line] = path.read_text().splitlines()
    event = orjson.loads(line)
    assert event["msg"] == "stage failed" and event["stage"] == "load"
    assert event["exc"].startswith("Traceback (most recent call last):")
    assert "in _fail_deep_inside" in event["exc"], "the frame that raised is in the log"
    assert event["exc"].splitlines()[-1] == "KeyError: 'no route to postgresql://lakebox:***@db:5432/lakebox'"
    assert "hunter2" not in line
