{#- Repository x author x day (the UTC day the commit was authored). -#}
{{ config(schema='analytics') }}

with commits as (
    select
        *,
        {{ dbt.hash("lower(coalesce(author_email, author_name))") }} as author_key,
        cast(authored_at as date) as activity_date
    from {{ ref('stg_commits') }}
    where is_reachable
)

select
    repo,
    author_key,
    max(author_name) as author_name,
    max(author_login) as author_login,
    activity_date,
    count(*) as commits,
    sum(case when is_merge then 1 else 0 end) as merges,
    sum(case when conventional_type is not null then 1 else 0 end) as conventional_commits,
    count(distinct conventional_type) as distinct_types,
    sum(case when is_breaking then 1 else 0 end) as breaking_changes,
    min(authored_at) as first_commit_at,
    max(authored_at) as last_commit_at
from commits
group by repo, author_key, activity_date
