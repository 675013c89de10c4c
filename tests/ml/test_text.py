"""The TF-IDF tokeniser: the tokens a regexp finds in each text, found for all texts in one
pass over their bytes, never running across the end of one text into the next."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from lakebox.pipelines.github_commits.text import DuckDBTfidf, tokenize

TEXTS = ["fix(api): Handle 404s", "ab", "cd", "", None, "a", "Ünïcödé wörds ÄB ab", "x" * 12 + " tail",
         "KELVIN \u212a k", "Ist ab-cd_ef 12 3", "été ok", "end1", "2start"]


def expected(texts: list[str | None], max_chars: int) -> list[tuple[int, str]]:
    return [(i, tok) for i, t in enumerate(texts) if t
            for tok in re.findall("[a-z0-9]{2,}", t[:max_chars].lower())]


def test_tokens_are_what_a_regexp_finds_in_each_text() -> None:
    for max_chars in (300, 10):
        docs, tokens = tokenize(pa.array(TEXTS, pa.string()), max_chars)
        assert list(zip(docs.to_pylist(), tokens.to_pylist(), strict=True)) == expected(TEXTS, max_chars)
    # "ab" then "cd": two texts, two tokens, not "abcd"; "end1" and "2start" likewise
    docs, tokens = tokenize(pa.array(["ab", "cd", "end1", "2start"]), 300)
    assert tokens.to_pylist() == ["ab", "cd", "end1", "2start"] and docs.to_pylist() == [0, 1, 2, 3]
    # one character to one, as DuckDB's lower() (which counted the tokens before) maps it; Python's
    # str.lower() makes "İ" two characters
    assert tokenize(pa.array(["İstanbul"]), 300)[1].to_pylist() == ["istanbul"]


def test_no_tokens_at_all() -> None:
    docs, tokens = tokenize(pa.array(["", None, "a b c"], pa.string()), 300)
    assert len(docs) == len(tokens) == 0
    matrix = DuckDBTfidf(max_features=5, min_df=1).fit(np.array(["ab ab cd", "cd"], dtype=object)).transform(
        np.array(["", None, "zz"], dtype=object))
    assert matrix.shape == (3, 2) and matrix.nnz == 0


def test_tfidf_counts_terms_per_text() -> None:
    model = DuckDBTfidf(max_features=2, min_df=1).fit(np.array(["ab ab cd", "cd", "ef"], dtype=object))
    assert list(model.terms_) == ["ab", "cd"]  # the two in the most texts; ties by name
    row = model.transform(np.array(["cd ab ab"], dtype=object)).toarray()[0]
    idf = np.log(4 / np.array([2, 3])) + 1
    weights = np.array([1 + np.log(2), 1.0]) * idf
    assert np.allclose(row, weights / np.linalg.norm(weights))
