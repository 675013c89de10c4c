{#- The `table` materialization on DuckDB, in one statement: `create or replace table ... as`.
    dbt-duckdb's own builds into an intermediate table, renames, drops the backup and asks
    the catalog about foreign keys and indexes on the way: ~40 ms of queries and Jinja per
    model, a fifth of a new retail day's build. DuckDB replaces the table atomically within
    the transaction (a failing query leaves the old table in place), and lakebox's models
    have no foreign keys, indexes, grants or contracts to carry over. PostgreSQL keeps
    dbt's own materialization. -#}
{% materialization table, adapter="duckdb", supported_languages=['sql'] %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {% if existing_relation is not none and not existing_relation.is_table %}
    {{ drop_relation_if_exists(existing_relation) }}
  {% endif %}
  {% call statement('main') -%}
    create or replace table {{ target_relation }} as ({{ compiled_code }})
  {%- endcall %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
