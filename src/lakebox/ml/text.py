"""TF-IDF of a text column, tokenised and counted in DuckDB.

scikit-learn's TfidfVectorizer tokenises and counts each text in a Python loop (~40 µs a
commit message here, most of a prediction's cost); DuckDB does the same set-based, and
the matrix is assembled from the (text, term, count) triples with NumPy. Tokens are runs
of ASCII letters and digits of at least two characters, lower-cased, from the first
`max_chars` characters (the subject and the start of the body carry the signal).
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

_COUNTS = """
select doc, tok, count(*) as n from (
  select doc, unnest(regexp_split_to_array(lower(substr(t, 1, {max_chars})), '[^a-z0-9]+')) as tok from texts
) where length(tok) >= 2 group by doc, tok
"""


class DuckDBTfidf(TransformerMixin, BaseEstimator):
    """Sublinear TF-IDF, L2-normalised rows, the `max_features` terms found in the most
    texts (at least `min_df` of them)."""

    def __init__(self, max_features: int = 2000, min_df: int = 2, max_chars: int = 300) -> None:
        self.max_features = max_features
        self.min_df = min_df
        self.max_chars = max_chars

    def fit(self, X: Any, y: Any = None) -> DuckDBTfidf:
        import numpy as np

        con, n_docs = self._connect(X)
        try:
            found = con.execute(
                f"select tok, count(*) as df from ({_COUNTS.format(max_chars=int(self.max_chars))}) "
                "group by tok having count(*) >= ? order by df desc, tok limit ?",
                [int(self.min_df), int(self.max_features)]).fetchnumpy()
        finally:
            con.close()
        order = np.argsort(found["tok"].astype(str), kind="stable")
        self.terms_ = found["tok"].astype(str)[order].astype(object)
        df = found["df"].astype(np.float64)[order]
        self.idf_ = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
        self.n_features_in_ = 1
        return self

    def transform(self, X: Any) -> Any:
        import numpy as np
        import pyarrow as pa
        from scipy import sparse
        from sklearn.preprocessing import normalize

        con, n_docs = self._connect(X)
        try:
            con.register("terms", pa.table({"tok": pa.array(self.terms_, pa.string()),
                                            "idx": pa.array(np.arange(len(self.terms_)), pa.int64())}))
            triples = con.execute(
                f"select c.doc, t.idx, c.n from ({_COUNTS.format(max_chars=int(self.max_chars))}) as c "
                "join terms as t using (tok)").fetchnumpy()
        finally:
            con.close()
        values = (1.0 + np.log(triples["n"].astype(np.float64))) * self.idf_[triples["idx"].astype(np.int64)]
        matrix = sparse.csr_matrix(
            (values.astype(np.float32), (triples["doc"].astype(np.int64), triples["idx"].astype(np.int64))),
            shape=(n_docs, len(self.terms_)))
        return normalize(matrix, norm="l2", copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        import numpy as np

        return np.asarray(self.terms_, dtype=object)

    @staticmethod
    def _connect(X: Any) -> tuple[Any, int]:
        """An in-memory DuckDB holding the texts as `texts(doc, t)`."""
        import duckdb
        import numpy as np
        import pyarrow as pa

        values = X.iloc[:, 0] if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2 else X
        texts = pa.array(np.asarray(values, dtype=object), pa.string(), from_pandas=True)
        con = duckdb.connect()
        con.register("texts", pa.table({"doc": pa.array(np.arange(len(texts)), pa.int64()), "t": texts}))
        return con, len(texts)
