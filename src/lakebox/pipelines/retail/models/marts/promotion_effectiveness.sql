{#- Each promotion against comparable ordinary days: same store, category and day type
    (weekday/weekend), without promotion or stockout. Stockout days count on neither side.
    lift_pct is left empty when a promotion day has no baseline to compare with. -#}
with promo_days as (
    select p.promo_id, d.sales_date, d.is_weekend, d.total_sales, b.avg_daily_sales as baseline_sales
    from {{ ref('stg_retail_promotions') }} as p
    join {{ ref('int_retail_category_days') }} as d
      on d.store_id = p.store_id and d.category = p.category
     and d.sales_date between p.start_date and p.end_date
    left join {{ ref('int_retail_baseline') }} as b
      on b.store_id = d.store_id and b.category = d.category and b.is_weekend = d.is_weekend
    where not d.stockout
),

measured as (
    select
        promo_id,
        count(*) as promo_days,
        avg(total_sales) as avg_daily_sales_promo,
        avg(baseline_sales) as avg_daily_sales_baseline,
        count(baseline_sales) as days_with_baseline
    from promo_days
    group by promo_id
)

select
    p.promo_id,
    p.store_id,
    p.category,
    p.start_date,
    p.end_date,
    p.discount_pct,
    coalesce(m.promo_days, 0) as promo_days,
    cast(m.avg_daily_sales_promo as {{ type_double() }}) as avg_daily_sales_promo,
    cast(m.avg_daily_sales_baseline as {{ type_double() }}) as avg_daily_sales_baseline,
    case when m.days_with_baseline = m.promo_days and m.avg_daily_sales_baseline > 0
         then cast(100 * (m.avg_daily_sales_promo / m.avg_daily_sales_baseline - 1) as {{ type_double() }})
    end as lift_pct
from {{ ref('stg_retail_promotions') }} as p
left join measured as m on m.promo_id = p.promo_id
