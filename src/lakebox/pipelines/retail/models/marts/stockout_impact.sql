{#- Stockouts per store and category, and the sales they likely cost: the ordinary-day
    average for that store, category and day type, for each day the shelf was empty. -#}
select
    d.store_id,
    st.store_name,
    st.region,
    d.category,
    count(*) as stockout_days,
    cast(coalesce(sum(b.avg_daily_sales), 0) as {{ type_double() }}) as estimated_lost_sales
from {{ ref('int_retail_category_days') }} as d
left join {{ ref('stg_retail_stores') }} as st on st.store_id = d.store_id
left join {{ ref('int_retail_baseline') }} as b
  on b.store_id = d.store_id and b.category = d.category and b.is_weekend = d.is_weekend
where d.stockout
group by d.store_id, st.store_name, st.region, d.category
