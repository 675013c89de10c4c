{#- Rows of the model that break a business rule given as a SQL condition. Used by the
    retail marts (e.g. `lift_pct is null or avg_daily_sales_baseline > 0`). -#}
{% test retail_rule(model, condition, column_name=none) %}
select * from {{ model }} where not ({{ condition }})
{% endtest %}
