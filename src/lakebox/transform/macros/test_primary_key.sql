{#- `column_name` is a primary key: never null, never repeated. One query instead of dbt's
    `unique` and `not_null` pair (each test is ~25 ms of dbt overhead on a small build).
    Failing rows are the null keys and one row per repeated key. -#}
{% test primary_key(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} is null
union all
select {{ column_name }} from {{ model }} where {{ column_name }} is not null
group by {{ column_name }} having count(*) > 1
{% endtest %}
