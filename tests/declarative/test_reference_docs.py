"""docs/pipelines.md holds the reference of every pipeline.toml key as the schema gives it."""

from __future__ import annotations

from pathlib import Path

from lakebox.declarative import reference
from lakebox.declarative.parse import known_keys

DOC = Path(__file__).parents[2] / "docs" / "pipelines.md"


def test_the_docs_reference_is_the_schemas() -> None:
    text = DOC.read_text()
    start, end = text.index(reference.BEGIN), text.index(reference.END) + len(reference.END)
    assert text[start:end] == reference.markdown(), (
        "docs/pipelines.md's reference is stale: replace it with `python -m lakebox.declarative.reference`")


def test_every_key_the_checker_knows_is_in_the_docs() -> None:
    block = reference.markdown()
    missing = [key for key in known_keys() if f"{key.rsplit('.', 1)[-1]}`" not in block]
    assert not missing, missing
