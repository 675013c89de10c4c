"""The commit classifier's online inputs: a commit as `staging.stg_commits` names its columns
becomes the row `classifier.SPEC.source_sql` returns for it.

The row's own features (the text without its `type(scope)!:` prefix, hour, ISO weekday,
length, merge) are the dbt model `ml.commit_features`'s expressions, here in DuckDB over the
caller's rows. The author's history is looked up: a commit already in the warehouse gets the
figures batch scoring read for it; a new one, its author's commits up to its commit time (in
the repo, for the count; every repo, for the type shares, as the batch window counts them):
a new commit comes after the history it is scored against, ties included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.ml.spec import RawInputs

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = (("sha", "string"), ("repo", "string"), ("author_name", "string"), ("author_email", "string"),
           ("committed_at", "datetime"), ("message_subject", "string"), ("message_body", "string"),
           ("parent_count", "long"))
# the dbt model's prefix (models/ml/commit_features.sql), as DuckDB's regexp_replace reads it
PREFIX = r"^(\w+)(\(([^)]*)\))?!?:[[:space:]]*"


def lookup_sql(source_sql: str, history_types: tuple[str, ...]) -> str:
    """Every scored commit's history figures, as batch scoring reads them."""
    shares = ", ".join(f"author_prior_{t}_share" for t in history_types)
    return (f"select sha, repo, author_key, cast(committed_at as timestamp) as committed_at, label, "
            f"author_prior_commits, {shares} from ({source_sql}) as src")


def features_sql(history_types: tuple[str, ...]) -> str:
    known = ", ".join(f"h.author_prior_{t}_share" for t in history_types)
    fresh = ",\n           ".join(
        f"coalesce(cast(count(*) filter (where h.label = '{t}') as double) / nullif(count(h.label), 0), 0.0) "
        f"as author_prior_{t}_share" for t in history_types)
    picked = ", ".join(f"coalesce(k.author_prior_{t}_share, f.author_prior_{t}_share) as author_prior_{t}_share"
                       for t in history_types)
    return f"""
with r as (
    select row_number() over () as _row, sha, repo,
           md5(lower(coalesce(author_email, author_name))) as author_key,
           cast(committed_at as timestamp) as committed_at,
           trim(regexp_replace(coalesce(message_subject, ''), '{PREFIX}', '')
                || coalesce(chr(10) || message_body, '')) as message_body,
           cast(parent_count as integer) as parent_count
    from raw
), known as (
    select r._row, h.author_prior_commits, {known}
    from r join history as h on h.sha = r.sha and h.repo = r.repo
), fresh as (
    select r._row,
           cast(count(h.sha) filter (where h.repo = r.repo) as integer) as author_prior_commits,
           {fresh}
    from r left join history as h
      on h.author_key = r.author_key and h.committed_at <= r.committed_at
    where r._row not in (select _row from known)
    group by r._row
)
select r.sha, r.repo, r.author_key, r.committed_at,
       cast(extract(hour from r.committed_at) as integer) as hour,
       cast(isodow(r.committed_at) as integer) as weekday,
       r.message_body, cast(length(r.message_body) as integer) as message_length,
       r.parent_count > 1 as is_merge, r.parent_count,
       coalesce(k.author_prior_commits, f.author_prior_commits) as author_prior_commits,
       {picked}
from r left join known as k on k._row = r._row left join fresh as f on f._row = r._row
order by r._row"""


def raw_inputs(source_sql: str, history_types: tuple[str, ...]) -> RawInputs:
    sql = features_sql(history_types)

    def features(raw: pa.Table, lookup: pa.Table) -> pa.Table:
        from lakebox.ml.predict import raw_query

        return raw_query(sql, raw=raw, history=lookup)

    return RawInputs(COLUMNS, lookup_sql(source_sql, history_types), features)
