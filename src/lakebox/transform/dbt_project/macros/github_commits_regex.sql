{#- Regular expressions differ between DuckDB (RE2 functions) and PostgreSQL (operators and
    regexp_match). Both read the pattern the same way for what the github_commits models
    use (\w, groups, anchors); regexp_replace(text, pattern, replacement) is the same in both. -#}
{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'lakebox')(expr, pattern)) }}
{%- endmacro %}

{% macro duckdb__regex_matches(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro default__regex_matches(expr, pattern) -%}
    ({{ expr }} ~ '{{ pattern }}')
{%- endmacro %}

{#- The text of capture group `group` of the first match, or null when there is none. -#}
{% macro regex_group(expr, pattern, group) -%}
    {{ return(adapter.dispatch('regex_group', 'lakebox')(expr, pattern, group)) }}
{%- endmacro %}

{% macro duckdb__regex_group(expr, pattern, group) -%}
    nullif(regexp_extract({{ expr }}, '{{ pattern }}', {{ group }}), '')
{%- endmacro %}

{% macro default__regex_group(expr, pattern, group) -%}
    nullif((regexp_match({{ expr }}, '{{ pattern }}'))[{{ group }}], '')
{%- endmacro %}
