"""`lakebox run orders` against an API that never stops paging (issue 14, item 1): the real
CLI and warehouse against a loopback API whose every page has a next cursor. The run must
end `failed` with an error naming the source and what stopped it, keeping what landed."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import duckdb
import orjson
import pytest

from tests.conftest import QuietHandler, run_cli, serve_on_loopback


class Endless(QuietHandler):
    """Orders pages forever: the same next cursor (`same`) or a new one on every page."""

    mode: ClassVar[str] = "same"
    seen: ClassVar[int] = 0

    def do_GET(self) -> None:
        Endless.seen += 1
        cursor = parse_qs(urlsplit(self.path).query).get("cursor", ["0"])[0]
        following = "c1" if Endless.mode == "same" else f"c{Endless.seen}"
        record = {"order_id": Endless.seen, "customer_id": 1, "amount": 1.0, "currency": "EUR", "status": "paid",
                  "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "asked": cursor}
        self.send_json(200, orjson.dumps({"records": [record], "next_cursor": following}))


def q(home: str, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("mode, extra, expected, pages", [
    ("same", {}, "the API's next page is one it already sent", 2),
    ("new", {"LAKEBOX_HTTP_MAX_PAGES": "20"}, "bound of 20 pages per run (LAKEBOX_HTTP_MAX_PAGES)", 20),
])
def test_run_orders_against_an_endless_api_ends_failed_keeping_what_landed(
    lakebox_env: dict[str, str], mode: str, extra: dict[str, str], expected: str, pages: int
) -> None:
    Endless.mode, Endless.seen = mode, 0
    with serve_on_loopback(Endless) as url:
        result = run_cli("run", "orders", env={**lakebox_env, "LAKEBOX_ORDERS_API_URL": url, **extra}, timeout=120)
    home = lakebox_env["LAKEBOX_HOME"]
    assert result.returncode == 1, result.stderr
    assert "source orders" in result.stderr and expected in result.stderr
    assert Endless.seen == pages
    assert q(home, "select status from ops.pipeline_runs") == [("failed",)]
    assert q(home, "select count(*) from ops.batches where source = 'orders'") == [(pages,)]  # landed, pending
