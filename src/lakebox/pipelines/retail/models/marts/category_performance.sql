{#- Monthly sales per region and category, with each category's share of its region. -#}
with monthly as (
    select
        cast({{ dbt.date_trunc('month', 'd.sales_date') }} as date) as month,
        st.region,
        d.category,
        cast(sum(d.total_sales) as {{ type_double() }}) as total_sales,
        cast(sum(d.transaction_count) as bigint) as transaction_count
    from {{ ref('int_retail_category_days') }} as d
    join {{ ref('stg_retail_stores') }} as st on st.store_id = d.store_id
    group by 1, 2, 3
)

select
    month,
    region,
    category,
    total_sales,
    transaction_count,
    case when sum(total_sales) over (partition by month, region) > 0
         then total_sales / sum(total_sales) over (partition by month, region) end as share_of_region_sales
from monthly
