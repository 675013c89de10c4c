"""The watermark overlap: an order updated in the watermark's last second but delivered
after the previous fetch is loaded, and versions already loaded are not loaded twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from lakebox.lake import Lake
from lakebox.pipelines.orders import SPEC
from lakebox.runner import Pipeline, Stage, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.conftest import QuietHandler, serve_on_loopback

fetch, load = (next(s.fn for s in SPEC.stages if s.name == name) for name in ("fetch", "load"))


def order(order_id: str, updated: str, status: str = "placed") -> dict:
    return {"order_id": order_id, "customer_id": "C1", "amount": 10.0, "currency": "USD", "status": status,
            "created_at": "2026-05-01T09:00:00Z", "updated_at": updated}


class Feed(QuietHandler):
    """An orders API over a list the test changes between runs (exclusive updated_since)."""

    records: list[dict] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        since = query.get("updated_since", [""])[0]
        floor = dt.datetime.fromisoformat(since) if since else None
        rows = [r for r in Feed.records if floor is None or dt.datetime.fromisoformat(r["updated_at"]) > floor]
        body = orjson.dumps({"records": sorted(rows, key=lambda r: (r["updated_at"], r["order_id"])), "next_cursor": None})
        self.send_json(200, body)


@pytest.fixture
def feed() -> Iterator[str]:
    with serve_on_loopback(Feed) as url:
        yield url


def ingest(home: Path, url: str) -> list[tuple]:
    settings = Settings.load(env={"LAKEBOX_HOME": str(home), "LAKEBOX_ORDERS_API_URL": url}, cwd=home)
    with open_warehouse(settings) as wh:
        outcome = run_pipeline(Pipeline("orders", (Stage("fetch", fetch), Stage("load", load))),
                               settings, Lake(settings.lake), wh)
        assert outcome.status == "success", outcome.error
        return wh.query("select order_id, status, cast(updated_at as varchar) from raw.orders order by 1, 3")


def test_late_order_in_the_watermark_second_is_loaded_once(tmp_path: Path, feed: str) -> None:
    Feed.records = [order("A", "2026-05-01T10:00:00Z"), order("B", "2026-05-01T10:00:05Z")]
    assert [r[0] for r in ingest(tmp_path, feed)] == ["A", "B"]
    # C arrives late with the very same updated_at as the watermark; A is updated later.
    Feed.records += [order("C", "2026-05-01T10:00:05Z"), order("A", "2026-05-01T10:00:09Z", "paid")]
    Feed.records = [r for r in Feed.records if not (r["order_id"] == "A" and r["status"] == "placed")]
    rows = ingest(tmp_path, feed)
    assert rows == [
        ("A", "placed", "2026-05-01 10:00:00"),
        ("A", "paid", "2026-05-01 10:00:09"),
        ("B", "placed", "2026-05-01 10:00:05"),
        ("C", "placed", "2026-05-01 10:00:05"),
    ]
    assert ingest(tmp_path, feed) == rows  # nothing new: nothing added
