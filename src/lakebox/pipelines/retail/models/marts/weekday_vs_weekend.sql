{#- Average daily sales on weekdays and on weekends, per store. -#}
select
    store_id,
    store_name,
    region,
    format,
    cast(avg(case when not is_weekend then total_sales end) as {{ type_double() }}) as avg_weekday_sales,
    cast(avg(case when is_weekend then total_sales end) as {{ type_double() }}) as avg_weekend_sales,
    case when avg(case when not is_weekend then total_sales end) > 0
         then cast(100 * (avg(case when is_weekend then total_sales end)
                          / avg(case when not is_weekend then total_sales end) - 1) as {{ type_double() }})
    end as weekend_uplift_pct
from {{ ref('store_daily_performance') }}
group by store_id, store_name, region, format
