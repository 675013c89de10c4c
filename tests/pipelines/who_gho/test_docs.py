"""docs/who_gho.md shows both contracts exactly as declared."""

from pathlib import Path

from lakebox.pipelines.who_gho.contract import COUNTRIES, OBSERVATIONS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "who_gho.md"


def test_docs_show_the_contracts() -> None:
    text = DOCS.read_text()
    assert OBSERVATIONS.to_markdown() in text
    assert COUNTRIES.to_markdown() in text
