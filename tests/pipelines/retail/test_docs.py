"""docs/retail.md shows every retail contract exactly as declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakebox.pipelines.retail.contract import CONTRACTS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "retail.md"


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.table)
def test_docs_show_the_contract(contract) -> None:
    assert contract.to_markdown() in DOCS.read_text()
