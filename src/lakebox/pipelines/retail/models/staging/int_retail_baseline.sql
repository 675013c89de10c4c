{#- What a store sells of a category on an ordinary day of each type (weekday or weekend):
    days without a promotion or a stockout. Needs at least 3 such days to count. -#}
select
    store_id,
    category,
    is_weekend,
    avg(total_sales) as avg_daily_sales,
    count(*) as baseline_days
from {{ ref('int_retail_category_days') }}
where promo_id is null and not stockout
group by store_id, category, is_weekend
having count(*) >= 3
