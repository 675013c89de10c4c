{#- One row per (repo, sha): the copy ingested last wins. The subject is the message's
    first line; a conventional-commit prefix `type(scope)!:` gives the type, the scope and
    (with `!` or a BREAKING CHANGE footer) a breaking change. is_reachable is false for a
    commit a full refresh marked as gone from the history (a force-push) after it was last
    ingested; the marts count reachable commits only. (The fetch creates the marks' table; a
    build without it, from raw loaded some other way, counts every commit reachable.) -#}
{{ config(schema='staging') }}

{%- set prefix = '^(\\w+)(\\(([^)]*)\\))?(!)?:' %}
{%- set blank = "chr(32) || chr(9) || chr(13) || chr(10)" %}
{%- set marks = source('raw', 'github_commits_unreachable') %}
{%- set marked = (load_relation(marks) is not none) if execute else true %}

with ranked as (
    select
        raw_commits.*,
        row_number() over (partition by repo, sha order by ingested_at desc, batch_id desc) as copy_rank
    from {{ source('raw', 'github_commits') }} as raw_commits
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
){% if marked %},

unreachable as (
    select repo, sha, max(marked_at) as marked_at
    from {{ marks }}
    group by repo, sha
){% endif %}

select
    latest.sha,
    latest.repo,
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
    {% if marked %}case when unreachable.marked_at >= latest.ingested_at then false else true end
    {%- else %}true{% endif %} as is_reachable,
    batch_id as _batch_id,
    ingested_at as _ingested_at
from latest
{%- if marked %}
left join unreachable
    on unreachable.repo = latest.repo and unreachable.sha = latest.sha
{%- endif %}
