{#- One row per store and day: sales, basket, and how many categories were out of stock or
    on promotion. -#}
select
    d.sales_date as date,
    d.store_id,
    st.store_name,
    st.region,
    st.format,
    cast(sum(d.total_sales) as {{ type_double() }}) as total_sales,
    cast(sum(d.transaction_count) as bigint) as transaction_count,
    case when sum(d.transaction_count) > 0
         then cast(sum(d.total_sales) as {{ type_double() }}) / sum(d.transaction_count) end as avg_basket,
    cast(sum(case when d.stockout then 1 else 0 end) as bigint) as stockout_categories,
    cast(sum(case when d.promo_id is not null then 1 else 0 end) as bigint) as promo_categories,
    d.is_weekend
from {{ ref('int_retail_category_days') }} as d
left join {{ ref('stg_retail_stores') }} as st on st.store_id = d.store_id
group by d.sales_date, d.store_id, st.store_name, st.region, st.format, d.is_weekend
