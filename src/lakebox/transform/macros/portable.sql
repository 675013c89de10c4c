{#- The few spellings the bundled models need that differ between DuckDB/PostgreSQL and
    Spark SQL (which has no `double precision`, and numbers weekdays 1-7 from Sunday). -#}
{% macro type_double() -%}{{ return(adapter.dispatch('type_double')()) }}{%- endmacro %}
{% macro default__type_double() -%}double precision{%- endmacro %}
{% macro spark__type_double() -%}double{%- endmacro %}

{% macro is_weekend(date_expr) -%}{{ return(adapter.dispatch('is_weekend')(date_expr)) }}{%- endmacro %}
{% macro default__is_weekend(date_expr) -%}extract(dow from {{ date_expr }}) in (0, 6){%- endmacro %}
{% macro spark__is_weekend(date_expr) -%}dayofweek({{ date_expr }}) in (1, 7){%- endmacro %}

{#- Incremental models are rebuilt whole on Spark: its Parquet tables have no
    delete+insert (merge needs Delta or Iceberg, whose jars are not installed here). -#}
{% macro incremental_or_table() -%}{{ return('table' if target.type == 'spark' else 'incremental') }}{%- endmacro %}

{#- ISO weekday, 1 = Monday … 7 = Sunday. -#}
{% macro iso_weekday(expr) -%}{{ return(adapter.dispatch('iso_weekday')(expr)) }}{%- endmacro %}
{% macro default__iso_weekday(expr) -%}extract(isodow from {{ expr }}){%- endmacro %}
{% macro spark__iso_weekday(expr) -%}extract(dow_iso from {{ expr }}){%- endmacro %}
