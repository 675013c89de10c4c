"""docs/orders.md shows the orders contract exactly as pipeline.toml declares it."""

from pathlib import Path

from lakebox.declarative.config import load_config
from lakebox.declarative.load import contract_for
from lakebox.pipelines import orders

DOCS = Path(__file__).resolve().parents[3] / "docs" / "orders.md"


def test_docs_show_the_contract() -> None:
    config = load_config(Path(orders.__file__).parent)
    assert contract_for(config, config.source.resources[0]).to_markdown() in DOCS.read_text()
