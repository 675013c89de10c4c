{#- `column_name` is unique, checked where a duplicate can have appeared: among the keys of
    rows from batches loaded since the last transform of `pipeline` that succeeded (so its
    tests passed then). An incremental model only changes those rows, so an old key can
    only be duplicated by one of them; checking every key of a 10M-row model costs ~1.5 s,
    this ~0.2 s. A full refresh, or a first build, checks every row. -#}
{% test unique_in_new_batches(model, column_name, pipeline, source) %}
{% if flags.FULL_REFRESH or target.type == 'spark' %}{#- ops.* is not in Spark: check every key -#}
select {{ column_name }} from {{ model }}
group by {{ column_name }} having count(*) > 1
{% else %}
with last_good as (
    select coalesce(max(started_at), cast('1900-01-01' as timestamp)) as started_at
    from ops.stage_runs
    where pipeline = '{{ pipeline }}' and stage = 'transform' and status = 'success'
),
new_batches as (
    select batch_id from ops.batches
    where source = '{{ source }}' and status = 'loaded' and loaded_at >= (select started_at from last_good)
),
changed as (
    select distinct {{ column_name }} as k from {{ model }}
    where _batch_id in (select batch_id from new_batches)
)
select {{ column_name }} from {{ model }}
where {{ column_name }} in (select k from changed)
group by {{ column_name }} having count(*) > 1
{% endif %}
{% endtest %}
