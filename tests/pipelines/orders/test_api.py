"""The synthetic orders API: its data, its paging protocol and its injected faults, over real HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pytest

from lakebox.errors import ConfigError
from lakebox.pipelines.orders.api import Fault, FaultPlan, RunningServer, create_app, serve_in_thread
from lakebox.pipelines.orders.generator import (
    COLUMNS,
    STATUSES,
    encode_cursor,
    generate_orders,
    page_bytes,
)

SEED = 7
ORDERS = 1000


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expected_records(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:
        row["created_at"], row["updated_at"] = _iso(row["created_at"]), _iso(row["updated_at"])
    return rows


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return generate_orders(ORDERS, SEED)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(ORDERS, SEED)) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    """A client of the shared server, with no fault pending before or after the test."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.delete("/_faults").raise_for_status()
        yield http
        http.delete("/_faults").raise_for_status()


def _read_all(http: httpx.Client, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every record the API serves for these params, following cursors; and the page count."""
    records: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        response = http.get("/v1/orders", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        records += page["records"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return records, pages


# --- the data ------------------------------------------------------------------------------


def test_same_count_and_seed_give_the_same_orders(table: pa.Table) -> None:
    assert generate_orders(ORDERS, SEED).equals(table)
    assert not generate_orders(ORDERS, SEED + 1).equals(table)


def test_orders_are_plausible(table: pa.Table) -> None:
    assert table.column_names == list(COLUMNS)
    assert table.num_rows == ORDERS
    assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    ids = table.column("order_id").to_pylist()
    assert len(set(ids)) == ORDERS and all(re.fullmatch(r"ORD-\d{7}", i) for i in ids)
    assert all(re.fullmatch(r"CUST-\d{5}", c) for c in table.column("customer_id").to_pylist())
    assert len(set(table.column("customer_id").to_pylist())) >= 100

    amount = table.column("amount").to_numpy()
    assert (amount >= 0).all() and (np.round(amount, 2) == amount).all()
    assert {c for c in table.column("currency").to_pylist() if not re.fullmatch("[A-Z]{3}", c)} == set()
    assert {"USD", "EUR", "GBP"} <= set(table.column("currency").to_pylist())
    assert set(table.column("status").to_pylist()) == set(STATUSES)

    created = table.column("created_at").cast(pa.int64()).to_numpy()
    updated = table.column("updated_at").cast(pa.int64()).to_numpy()
    assert (updated >= created).all()
    assert (updated > created).sum() > ORDERS // 10
    assert (created % 1_000_000 == 0).all(), "timestamps are whole seconds"
    assert (created.max() - created.min()) / 86_400e6 >= 30
    keys = list(zip(updated.tolist(), ids, strict=True))
    assert keys == sorted(keys), "sorted by (updated_at, order_id)"


def test_a_larger_dataset_is_the_same_timeline_later(table: pa.Table) -> None:
    """1100 orders = the 1000, some of them updated since, plus 100 new ones."""
    before = {row["order_id"]: row for row in table.to_pylist()}
    after = {row["order_id"]: row for row in generate_orders(ORDERS + 100, SEED).to_pylist()}

    assert set(before) <= set(after)
    assert sorted(set(after) - set(before)) == [f"ORD-{n:07d}" for n in range(ORDERS + 1, ORDERS + 101)]
    changed = [i for i in before if after[i] != before[i]]
    assert len(changed) >= 5
    for order_id in before:
        old, new = before[order_id], after[order_id]
        for field in ("customer_id", "amount", "currency", "created_at"):
            assert new[field] == old[field], (order_id, field)
        assert new["updated_at"] >= old["updated_at"]
    watermark = max(row["updated_at"] for row in before.values())
    for order_id in changed:
        assert after[order_id]["status"] != before[order_id]["status"] == "placed"
        assert after[order_id]["updated_at"] > watermark, "a change is seen by a reader that resumes after it"


def test_page_bytes_is_the_table_as_json(table: pa.Table) -> None:
    whole = orjson.loads(page_bytes(table, 0, ORDERS))
    assert whole == {"records": _expected_records(table), "next_cursor": None}
    assert orjson.loads(page_bytes(table, 990, 10))["next_cursor"] is None
    assert orjson.loads(page_bytes(table, 0, 10))["next_cursor"] == encode_cursor(
        table.column("updated_at")[9].value // 1_000_000, table.column("order_id")[9].as_py()
    )
    assert orjson.loads(page_bytes(table, ORDERS, 10)) == {"records": [], "next_cursor": None}
    assert b'"amount":' in page_bytes(table, 0, 1) and b'.' in page_bytes(table, 0, 1).split(b'"amount":')[1][:12]


def test_no_orders_is_an_empty_dataset() -> None:
    empty = generate_orders(0, SEED)
    assert empty.num_rows == 0 and empty.column_names == list(COLUMNS)
    assert orjson.loads(page_bytes(empty, 0, 10)) == {"records": [], "next_cursor": None}
    with pytest.raises(ConfigError, match="count and seed"):
        generate_orders(-1, SEED)


# --- the protocol --------------------------------------------------------------------------


def test_health(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"ok": True, "orders": ORDERS}


@pytest.mark.parametrize("limit", [1, 7, 1000, 10_000])
def test_paging_serves_every_order_once_in_order(client: httpx.Client, table: pa.Table, limit: int) -> None:
    records, pages = _read_all(client, limit=limit)
    assert records == _expected_records(table)
    assert pages == -(-ORDERS // limit)


def test_default_limit_is_1000_and_the_last_page_has_no_cursor(client: httpx.Client) -> None:
    page = client.get("/v1/orders").json()
    assert len(page["records"]) == 1000 and page["next_cursor"] is None
    page = client.get("/v1/orders", params={"limit": 999}).json()
    assert page["next_cursor"] is not None
    rest = client.get("/v1/orders", params={"limit": 999, "cursor": page["next_cursor"]}).json()
    assert len(rest["records"]) == 1 and rest["next_cursor"] is None


def test_updated_since_is_exclusive(client: httpx.Client, table: pa.Table) -> None:
    expected = _expected_records(table)
    since = expected[400]["updated_at"]
    newer = [r for r in expected if r["updated_at"] > since]
    assert 0 < len(newer) < ORDERS - 400

    for spelling in (since, since.replace("Z", "+00:00"), since.replace("Z", ".5Z"), since[:-1]):
        assert _read_all(client, updated_since=spelling, limit=100)[0] == newer, spelling
    moment = datetime.fromisoformat(since)
    assert _read_all(client, updated_since=(moment - timedelta(seconds=1)).isoformat())[0][0]["updated_at"] == since


def test_the_cursor_resumes_after_its_position_with_or_without_updated_since(
    client: httpx.Client, table: pa.Table
) -> None:
    expected = _expected_records(table)
    first = client.get("/v1/orders", params={"limit": 300}).json()
    cursor = first["next_cursor"]
    assert client.get("/v1/orders", params={"cursor": cursor}).json()["records"] == expected[300:]
    early = expected[10]["updated_at"]
    late = expected[600]["updated_at"]
    with_early = client.get("/v1/orders", params={"cursor": cursor, "updated_since": early}).json()["records"]
    assert with_early == expected[300:]
    with_late = client.get("/v1/orders", params={"cursor": cursor, "updated_since": late}).json()["records"]
    assert with_late == [r for r in expected if r["updated_at"] > late]


def test_a_cursor_carries_over_to_a_dataset_that_grew(table: pa.Table) -> None:
    """A reader that kept its position reads exactly the new and updated orders next time."""
    with serve_in_thread(create_app(ORDERS + 100, SEED)) as grown, httpx.Client(base_url=grown.url) as http:
        resume_at = encode_cursor(
            table.column("updated_at")[-1].value // 1_000_000, table.column("order_id")[-1].as_py()
        )
        page = http.get("/v1/orders", params={"cursor": resume_at, "limit": 10_000}).json()
    before = {r["order_id"]: r for r in _expected_records(table)}
    fresh = [r for r in page["records"] if before.get(r["order_id"]) != r]
    assert fresh == page["records"]
    assert sum(r["order_id"] not in before for r in fresh) == 100
    assert sum(r["order_id"] in before for r in fresh) >= 5


@pytest.mark.parametrize("limit", ["0", "10001", "-1", "ten", "1.5"])
def test_a_limit_outside_1_to_10000_is_a_422(client: httpx.Client, limit: str) -> None:
    response = client.get("/v1/orders", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["parameter"] == "limit" and "10000" in response.json()["error"]


def test_a_bad_updated_since_is_a_422(client: httpx.Client) -> None:
    response = client.get("/v1/orders", params={"updated_since": "yesterday"})
    assert response.status_code == 422 and response.json()["parameter"] == "updated_since"


@pytest.mark.parametrize("cursor", ["not a cursor!", "aGVsbG8", encode_cursor(1_780_000_000, "X-1")])
def test_a_bad_cursor_is_a_400(client: httpx.Client, cursor: str) -> None:
    response = client.get("/v1/orders", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["parameter"] == "cursor" and "next_cursor" in response.json()["error"]


def test_100k_orders_in_pages_of_10k() -> None:
    with serve_in_thread(create_app(100_000, SEED)) as big, httpx.Client(base_url=big.url) as http:
        started = time.perf_counter()
        records, pages = _read_all(http, limit=10_000)
        elapsed = time.perf_counter() - started
    assert pages == 10 and len({r["order_id"] for r in records}) == 100_000
    print(f"100k orders in 10 pages of 10k: {elapsed:.3f} s, client parsing included")


# --- faults --------------------------------------------------------------------------------


def _clean_page(client: httpx.Client) -> dict[str, Any]:
    page: dict[str, Any] = client.get("/v1/orders", params={"limit": 25}).json()
    return page


def test_429_carries_retry_after_and_is_used_up(client: httpx.Client) -> None:
    client.post("/_faults", json={"kind": "429", "count": 2, "retry_after": 0}).raise_for_status()
    assert client.get("/_faults").json()["faults"] == [{"kind": "429", "count": 2, "retry_after": 0, "delay": 2.0}]
    for remaining in (1, 0):
        response = client.get("/v1/orders", params={"limit": 5})
        assert response.status_code == 429 and response.headers["Retry-After"] == "0"
        assert len(client.get("/_faults").json()["faults"]) == remaining
    assert client.get("/v1/orders", params={"limit": 5}).status_code == 200


def test_429_retry_after_defaults_to_one_second(client: httpx.Client) -> None:
    client.post("/_faults", json={"kind": "429"}).raise_for_status()
    assert client.get("/v1/orders").headers["Retry-After"] == "1"


def test_faults_queue_up_in_order() -> None:
    plan = FaultPlan.parse(["429:1:retry_after=0", "500:2", "malformed"])
    with serve_in_thread(create_app(50, SEED, faults=plan)) as faulty, httpx.Client(base_url=faulty.url) as http:
        statuses = [http.get("/v1/orders").status_code for _ in range(5)]
        assert statuses == [429, 500, 500, 200, 200]
    assert plan.pending() == []


def test_a_persistent_fault_stays_until_cleared(client: httpx.Client) -> None:
    client.post("/_faults", json={"kind": "500", "count": -1}).raise_for_status()
    assert [client.get("/v1/orders").status_code for _ in range(4)] == [500] * 4
    assert client.get("/_faults").json()["faults"][0]["count"] == -1
    assert client.delete("/_faults").json() == {"faults": []}
    assert client.get("/v1/orders").status_code == 200


def test_slow_delays_the_response_only(client: httpx.Client) -> None:
    clean = _clean_page(client)
    client.post("/_faults", json={"kind": "slow", "delay": 0.3}).raise_for_status()
    started = time.perf_counter()
    response = client.get("/v1/orders", params={"limit": 25})
    assert time.perf_counter() - started >= 0.3
    assert response.json() == clean


def test_malformed_is_a_200_that_does_not_parse(client: httpx.Client) -> None:
    client.post("/_faults", json={"kind": "malformed"}).raise_for_status()
    response = client.get("/v1/orders", params={"limit": 25})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def _spoiled(client: httpx.Client, kind: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(clean, spoiled) records of the same page; the spoiled page keeps the clean cursor."""
    clean = _clean_page(client)
    client.post("/_faults", json={"kind": kind}).raise_for_status()
    spoiled = _clean_page(client)
    assert spoiled["next_cursor"] == clean["next_cursor"]
    assert _clean_page(client) == clean, "the fault is used up"
    return clean["records"], spoiled["records"]


def test_rename_field(client: httpx.Client) -> None:
    clean, spoiled = _spoiled(client, "rename_field")
    assert all("amount" not in r for r in spoiled)
    assert [r["order_amount"] for r in spoiled] == [r["amount"] for r in clean]


def test_missing_field(client: httpx.Client) -> None:
    clean, spoiled = _spoiled(client, "missing_field")
    assert all("customer_id" not in r for r in spoiled)
    assert [r["order_id"] for r in spoiled] == [r["order_id"] for r in clean]


def test_null_ids(client: httpx.Client) -> None:
    clean, spoiled = _spoiled(client, "null_ids")
    assert 1 <= sum(r["order_id"] is None for r in spoiled) < len(clean)


def test_negative_amount(client: httpx.Client) -> None:
    _, spoiled = _spoiled(client, "negative_amount")
    assert 1 <= sum(r["amount"] < 0 for r in spoiled) < len(spoiled)


def test_duplicate_ids(client: httpx.Client) -> None:
    clean, spoiled = _spoiled(client, "duplicate_ids")
    ids = [r["order_id"] for r in spoiled]
    assert len(ids) > len(set(ids)) and set(ids) == {r["order_id"] for r in clean}


def test_unknown_status(client: httpx.Client) -> None:
    _, spoiled = _spoiled(client, "unknown_status")
    assert 1 <= sum(r["status"] == "lost" for r in spoiled) < len(spoiled)


def test_fault_specs_parse() -> None:
    assert Fault.parse("429") == Fault("429", count=1, retry_after=1)
    assert Fault.parse("429:3:retry_after=0") == Fault("429", count=3, retry_after=0)
    assert Fault.parse("slow:delay=0.5") == Fault("slow", count=1, delay=0.5)
    assert Fault.parse("null_ids:-1") == Fault("null_ids", count=-1)


@pytest.mark.parametrize(
    "spec",
    ["teapot", "429:0", "429:-2", "429:x", "slow:delay=fast", "slow:delay=nan", "429:1:colour=red",
     "429:retry_after=-1"],
)
def test_bad_fault_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="orders API fault"):
        FaultPlan.parse([spec])


@pytest.mark.parametrize(
    "body", [b'{"kind": "teapot"}', b'{"count": 1}', b'{"kind": "500", "x": 1}', b"[", b'{"kind": "500", "count": "2"}']
)
def test_bad_fault_posts_are_422(client: httpx.Client, body: bytes) -> None:
    response = client.post("/_faults", content=body)
    assert response.status_code == 422 and "error" in response.json()
    assert client.get("/_faults").json() == {"faults": []}


# --- the server ----------------------------------------------------------------------------


def test_a_stopped_server_refuses_connections() -> None:
    running = serve_in_thread(create_app(10, SEED))
    assert httpx.get(f"{running.url}/health").status_code == 200
    running.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.url}/health")


def test_a_port_in_use_is_a_config_error(server: RunningServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match="cannot listen"):
        serve_in_thread(create_app(10, SEED), port=port)
