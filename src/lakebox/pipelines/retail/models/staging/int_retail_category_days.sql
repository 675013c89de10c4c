{#- One row per store, category and day: sales, the stockout flag and the promotion running
    that day (if any). The grain every retail mart starts from. -#}
with promo_days as (
    select
        s.sales_date, s.store_id, s.category, p.promo_id, p.discount_pct as promo_discount_pct,
        row_number() over (partition by s.sales_date, s.store_id, s.category order by p.start_date desc, p.promo_id) as promo_rank
    from {{ ref('stg_retail_daily_sales') }} as s
    join {{ ref('stg_retail_promotions') }} as p
      on p.store_id = s.store_id and p.category = s.category
     and s.sales_date between p.start_date and p.end_date
)

select
    s.sales_date,
    s.store_id,
    s.category,
    s.total_sales,
    s.transaction_count,
    s.discount_pct,
    s.is_weekend,
    coalesce(i.stockout, false) as stockout,
    i.on_hand_units,
    pd.promo_id,
    pd.promo_discount_pct
from {{ ref('stg_retail_daily_sales') }} as s
left join {{ ref('stg_retail_inventory') }} as i
  on i.inventory_date = s.sales_date and i.store_id = s.store_id and i.category = s.category
left join promo_days as pd
  on pd.sales_date = s.sales_date and pd.store_id = s.store_id and pd.category = s.category and pd.promo_rank = 1
