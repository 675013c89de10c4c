"""docs/orders.md shows the orders contract exactly as declared."""

from pathlib import Path

from lakebox.pipelines.orders.contract import CONTRACT

DOCS = Path(__file__).resolve().parents[3] / "docs" / "orders.md"


def test_docs_show_the_contract() -> None:
    assert CONTRACT.to_markdown() in DOCS.read_text()
