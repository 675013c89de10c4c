{#- Repository x week (Monday, UTC, by committer date) x commit type: how much of a week's
    work each type is. Commits without a prefix count as `merge` or `none`. -#}
{{ config(schema='analytics') }}

with typed as (
    select
        repo,
        cast({{ dbt.date_trunc('week', 'committed_at') }} as date) as week_start,
        coalesce(conventional_type, case when is_merge then 'merge' else 'none' end) as commit_type
    from {{ ref('stg_commits') }}
    where is_reachable
),

counted as (
    select repo, week_start, commit_type, count(*) as commits
    from typed
    group by repo, week_start, commit_type
)

select
    repo,
    week_start,
    commit_type,
    commits,
    cast(commits as {{ type_double() }}) / sum(commits) over (partition by repo, week_start) as share
from counted
