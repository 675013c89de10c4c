{#- Regular expressions differ between DuckDB (RE2 functions), PostgreSQL (operators and
    regexp_match) and Spark (Java regexes in string literals that Spark unescapes, so each
    backslash is written twice; Java reads `[[:space:]]` as a plain character class, so it
    is spelled `\s`). All read the patterns the github_commits models use (\w, groups,
    anchors) the same way. -#}
{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'lakebox')(expr, pattern)) }}
{%- endmacro %}

{% macro duckdb__regex_matches(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__regex_matches(expr, pattern) -%}
    ({{ expr }} rlike {{ spark_regex(pattern) }})
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

{% macro spark__regex_group(expr, pattern, group) -%}
    nullif(regexp_extract({{ expr }}, {{ spark_regex(pattern) }}, {{ group }}), '')
{%- endmacro %}

{% macro default__regex_group(expr, pattern, group) -%}
    nullif((regexp_match({{ expr }}, '{{ pattern }}'))[{{ group }}], '')
{%- endmacro %}

{#- `expr` with the first match of `pattern` replaced (the models' patterns are anchored,
    so Spark's replace-all is the same). -#}
{% macro regex_replace(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regex_replace', 'lakebox')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regex_replace(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro spark__regex_replace(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ spark_regex(pattern) }}, '{{ replacement }}')
{%- endmacro %}

{% macro spark_regex(pattern) -%}
    '{{ pattern | replace("[[:space:]]", "\\s") | replace("\\", "\\\\") }}'
{%- endmacro %}
