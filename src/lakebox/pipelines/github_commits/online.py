"""The commit classifier's online inputs: a commit as `staging.stg_commits` names its columns
becomes the row `classifier.SPEC.source_sql` returns for it.

The row's own features (the text without its `type(scope)!:` prefix, hour, ISO weekday,
length, merge) are the dbt model `ml.commit_features`'s expressions, in Arrow compute (RE2,
the regex engine DuckDB's regexp_replace uses). The author's history is looked up: a commit
already in the warehouse gets the figures batch scoring read for it (a hash index built once
per lookup read); a new one, its author's commits up to its commit time (in the repo, for the
count; every repo, for the type shares, as the batch window counts them), in DuckDB: a new
commit comes after the history it is scored against, ties included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.ml.spec import RawInputs

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = (("sha", "string"), ("repo", "string"), ("author_name", "string"), ("author_email", "string"),
           ("committed_at", "datetime"), ("message_subject", "string"), ("message_body", "string"),
           ("parent_count", "long"))
# the dbt model's prefix (models/ml/commit_features.sql)
PREFIX = r"^(\w+)(\(([^)]*)\))?!?:[[:space:]]*"
KEY_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class History:
    """The lookup as read, and a hash index of its (repo, sha) built once."""

    table: pa.Table
    index: Any  # pandas.Index of "repo<US>sha"


def lookup_sql(source_sql: str, history_types: tuple[str, ...]) -> str:
    """Every scored commit's history figures, as batch scoring reads them."""
    shares = ", ".join(f"author_prior_{t}_share" for t in history_types)
    return (f"select sha, repo, author_key, cast(committed_at as timestamp) as committed_at, label, "
            f"author_prior_commits, {shares} from ({source_sql}) as src")


def _keys(table: pa.Table) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(table.column("repo"), table.column("sha"), KEY_SEPARATOR)


def prepare(lookup: pa.Table) -> History:
    import pandas as pd

    return History(lookup, pd.Index(_keys(lookup).to_numpy(zero_copy_only=False)))


def fresh_sql(history_types: tuple[str, ...]) -> str:
    shares = ",\n           ".join(
        f"coalesce(cast(count(*) filter (where h.label = '{t}') as double) / nullif(count(h.label), 0), 0.0) "
        f"as author_prior_{t}_share" for t in history_types)
    return f"""
with r as (
    select row_number() over () as _row, repo, md5(lower(coalesce(author_email, author_name))) as author_key,
           cast(committed_at as timestamp) as committed_at
    from raw
)
select r._row, cast(count(h.sha) filter (where h.repo = r.repo) as integer) as author_prior_commits,
       {shares}
from r left join history as h on h.author_key = r.author_key and h.committed_at <= r.committed_at
group by r._row
order by r._row"""


def own_features(raw: pa.Table) -> dict[str, pa.Array]:
    """The commit's own features, as commit_features.sql computes them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    subject = pc.replace_substring_regex(pc.fill_null(raw.column("message_subject"), ""), PREFIX, "",
                                         max_replacements=1)
    body = pc.fill_null(pc.binary_join_element_wise("\n", raw.column("message_body"), ""), "")
    text = pc.utf8_trim(pc.binary_join_element_wise(subject, body, ""), " ")
    at = raw.column("committed_at").cast(pa.timestamp("us"))
    parents = raw.column("parent_count").cast(pa.int32())
    return {"committed_at": at, "hour": pc.hour(at).cast(pa.int32()),
            "weekday": pc.day_of_week(at, count_from_zero=False, week_start=1).cast(pa.int32()),
            "message_body": text, "message_length": pc.utf8_length(text).cast(pa.int64()),
            "is_merge": pc.greater(parents, 1), "parent_count": parents}


def raw_inputs(source_sql: str, history_types: tuple[str, ...]) -> RawInputs:
    sql = fresh_sql(history_types)
    looked_up = ("author_prior_commits", *(f"author_prior_{t}_share" for t in history_types))

    def features(raw: pa.Table, history: History) -> pa.Table:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from lakebox.ml.predict import raw_query

        at = history.index.get_indexer(_keys(raw).to_numpy(zero_copy_only=False))
        known = at >= 0
        if known.all():
            found = history.table.select(list(looked_up)).take(pa.array(at))
        else:  # new commits: their author's history counted in DuckDB; the known ones looked up
            fresh = raw_query(sql, raw=raw.filter(pa.array(~known)), history=history.table)
            known_rows = history.table.select(list(looked_up)).take(pa.array(at[known]))
            order = np.argsort(np.concatenate([np.flatnonzero(known), np.flatnonzero(~known)]), kind="stable")
            found = pa.concat_tables([known_rows, fresh.select(list(looked_up)).cast(known_rows.schema)]).take(
                pa.array(order))
        own = own_features(raw)
        columns = {"sha": raw.column("sha"), "repo": raw.column("repo"), **own,
                   **{name: found.column(name) for name in looked_up}}
        return pa.table({name: pc.cast(col, col.type) for name, col in columns.items()})

    return RawInputs(COLUMNS, lookup_sql(source_sql, history_types), features, prepare)
