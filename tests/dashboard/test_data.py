"""The dashboard's read-only queries: quarantine errors spelled out, and PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lakebox.dashboard.data import describe_failed_rules
from lakebox.dashboard.formats import compact, money
from tests.dashboard.conftest import FAILED_RULES, FIRST_DAY, LAST_DAY, STORES, copy_to_postgres, expected_sales
from tests.dashboard.test_pages import metrics, render


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (orjson.dumps(FAILED_RULES).decode(),
         "not_null(store_id): 3 rows — store_id is empty; accepted_range(quantity): 1 rows — quantity < 0"),
        ('[{"rule": "parse", "column": null, "failing_rows": 0, "detail": ""}]', "parse: 0 rows"),
        ("response is not a valid orders page: bad JSON", "response is not a valid orders page: bad JSON"),
        ('{"not": "a list"}', '{"not": "a list"}'),
        (None, ""),
    ],
)
def test_failed_rules_read_as_sentences(error: str | None, described: str) -> None:
    assert describe_failed_rules(error) == described


@pytest.mark.postgres
def test_pages_read_a_postgresql_warehouse(warehouse_home: Path, pg_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    copy_to_postgres(warehouse_home / "warehouse.duckdb", pg_url)
    monkeypatch.setenv("LAKEBOX_WAREHOUSE", pg_url)

    at = render("retail")
    sales, transactions = expected_sales(list(STORES), FIRST_DAY, LAST_DAY)
    assert metrics(at)["Total sales"] == money(sales) == "624.0 k"
    assert metrics(at)["Transactions"] == compact(transactions) == "59.0 k"
    assert "postgres:" in at.sidebar.caption[0].value
    next(w for w in at.sidebar.multiselect if w.label == "Region").set_value(["South"]).run()
    assert metrics(at)["Total sales"] == money(expected_sales(["S003", "S004"], FIRST_DAY, LAST_DAY)[0])

    at = render("orders")
    assert metrics(at)["Orders"] == "155"

    at = render("platform")
    assert metrics(at)["Quarantined batches"] == "1"
    assert metrics(at)["Failed runs"] == "1"


@pytest.mark.postgres
def test_an_empty_postgresql_warehouse_says_what_to_run(lakebox_env: dict[str, str], pg_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEBOX_WAREHOUSE", pg_url)
    at = render("retail")
    assert any("No retail data yet" in i.value for i in at.info)


def test_an_unreachable_postgresql_warehouse_is_an_error_box(lakebox_env: dict[str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    monkeypatch.setenv("LAKEBOX_WAREHOUSE", f"postgresql://lakebox:s3cret-pw@127.0.0.1:{port}/nowhere")
    from streamlit.testing.v1 import AppTest

    from lakebox.dashboard import APP

    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert len(at.error) == 1
    assert "cannot read the PostgreSQL warehouse" in at.error[0].value
    assert "s3cret-pw" not in at.error[0].value
