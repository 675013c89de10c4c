"""docs/github_commits.md shows the contract exactly as declared, and every setting of the spec."""

from pathlib import Path

from lakebox.pipelines.github_commits import SPEC
from lakebox.pipelines.github_commits.contract import CONTRACT

DOCS = Path(__file__).resolve().parents[3] / "docs" / "github_commits.md"


def test_docs_show_the_contract_and_the_settings() -> None:
    text = DOCS.read_text()
    assert CONTRACT.to_markdown() in text
    assert all(f"`{setting.env}`" in text for setting in SPEC.settings)
