{#- What the commit classifier learns from: everything but the conventional prefix, which
    is the label. Times are UTC (GitHub reports commit dates in UTC); weekday is ISO
    (1 = Monday); author_prior_commits counts the author's earlier commits in the repo.
    Commits a force-push removed (stg_commits.is_reachable false) are left out. -#}
{{ config(schema='ml') }}

{%- set prefix = '^(\\w+)(\\(([^)]*)\\))?!?:[[:space:]]*' %}

with commits as (
    select
        *,
        {{ dbt.hash("lower(coalesce(author_email, author_name))") }} as author_key,
        trim({{ regex_replace('message_subject', prefix, '') }}
             || coalesce(chr(10) || message_body, '')) as text_without_prefix
    from {{ ref('stg_commits') }}
    where is_reachable
)

select
    sha,
    repo,
    author_key,
    committed_at,
    cast(extract(hour from committed_at) as integer) as hour,
    cast({{ iso_weekday('committed_at') }} as integer) as weekday,
    text_without_prefix as message_body,
    length(text_without_prefix) as message_length,
    is_merge,
    parent_count,
    cast(row_number() over (partition by repo, author_key order by committed_at, authored_at, sha) - 1 as integer)
        as author_prior_commits,
    conventional_type as label
from commits
