{#- One row per (repo, sha): the copy ingested last wins. The subject is the message's
    first line; a conventional-commit prefix `type(scope)!:` gives the type, the scope and
    (with `!` or a BREAKING CHANGE footer) a breaking change. -#}

{%- set prefix = '^(\\w+)(\\(([^)]*)\\))?(!)?:' %}
{%- set blank = "chr(32) || chr(9) || chr(13) || chr(10)" %}

with ranked as (
    select
        raw_commits.*,
        row_number() over (partition by repo, sha order by ingested_at desc, batch_id desc) as copy_rank
    from {{ source('github_commits', 'github_commits') }} as raw_commits
),

latest as (
    select
        *,
        trim(trailing {{ blank }} from split_part(message, chr(10), 1)) as message_subject,
        case when position(chr(10) in message) > 0
             then nullif(trim(both {{ blank }} from substr(message, position(chr(10) in message) + 1)), '')
        end as message_body
    from ranked
    where copy_rank = 1
)

select
    sha,
    repo,
    author_name,
    author_email,
    nullif(lower(split_part(author_email, '@', 2)), '') as author_email_domain,
    author_login,
    committer_name,
    committer_login,
    authored_at,
    committed_at,
    message_subject,
    message_body,
    lower({{ regex_group('message_subject', prefix, 1) }}) as conventional_type,
    {{ regex_group('message_subject', prefix, 3) }} as conventional_scope,
    coalesce({{ regex_group('message_subject', prefix, 4) }} = '!', false)
        or coalesce(message_body like '%BREAKING CHANGE%' or message_body like '%BREAKING-CHANGE%', false)
        as is_breaking,
    parent_count > 1 as is_merge,
    parent_count,
    verified,
    batch_id as _batch_id,
    ingested_at as _ingested_at
from latest
