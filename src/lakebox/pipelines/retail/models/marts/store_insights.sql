{#- Plain-language findings a store manager can act on, at most one per store and type:
      underperformance  daily sales well below stores of the same format in the region
      stockouts         sales lost to empty shelves, when at least 1% of the store's sales
      weak_promotions   promotions that barely lifted sales
      weekend_dip       a store selling clearly less on weekends than on weekdays
    metric_value is the percentage (or, for stockouts, the estimated lost sales). -#}
with store_days as (
    select store_id, store_name, region, format,
           avg(total_sales) as avg_daily_sales,
           sum(total_sales) as total_sales,
           cast(sum(stockout_categories) as bigint) as stockout_days
    from {{ ref('store_daily_performance') }}
    group by store_id, store_name, region, format
),

peers as (
    select s.*,
           avg(avg_daily_sales) over (partition by region, format) as peer_avg,
           count(*) over (partition by region, format) as peer_count
    from store_days as s
),

underperformance as (
    select store_id, store_name, region, 'underperformance' as insight_type,
           100 * (1 - avg_daily_sales / peer_avg) as pct, stockout_days, format
    from peers
    where peer_count >= 2 and peer_avg > 0 and avg_daily_sales < 0.92 * peer_avg
),

lost as (
    select i.store_id, sum(i.estimated_lost_sales) as lost_sales, sum(i.stockout_days) as stockout_days,
           max(i.stockout_days) as worst_days
    from {{ ref('stockout_impact') }} as i
    group by i.store_id
),

worst_category as (
    select store_id, category,
           row_number() over (partition by store_id order by estimated_lost_sales desc, category) as rank_in_store
    from {{ ref('stockout_impact') }}
),

stockouts as (
    select s.store_id, s.store_name, s.region, 'stockouts' as insight_type, l.lost_sales,
           100 * l.lost_sales / nullif(s.total_sales + l.lost_sales, 0) as pct, l.stockout_days, w.category
    from lost as l
    join store_days as s on s.store_id = l.store_id
    join worst_category as w on w.store_id = l.store_id and w.rank_in_store = 1
    where 100 * l.lost_sales / nullif(s.total_sales + l.lost_sales, 0) >= 1
),

promos as (
    select p.store_id, avg(p.lift_pct) as avg_lift, count(*) as promos
    from {{ ref('promotion_effectiveness') }} as p
    where p.lift_pct is not null
    group by p.store_id
    having count(*) >= 2
),

weak_promotions as (
    select s.store_id, s.store_name, s.region, 'weak_promotions' as insight_type, p.avg_lift, p.promos
    from promos as p
    join store_days as s on s.store_id = p.store_id
    where p.avg_lift < 10
),

weekend_dip as (
    select store_id, store_name, region, 'weekend_dip' as insight_type, weekend_uplift_pct, format
    from {{ ref('weekday_vs_weekend') }}
    where weekend_uplift_pct < -10
)

select
    store_id, store_name, region, insight_type,
    case when pct >= 25 then 'high' when pct >= 15 then 'medium' else 'low' end as severity,
    cast(pct as {{ type_double() }}) as metric_value,
    'Store ' || store_id || ' (' || region || ') sold ' || cast(cast(round(cast(pct as numeric(18, 3)), 0) as bigint) as {{ dbt.type_string() }})
        || '% below the average ' || region || ' ' || format || ' store, with ' || cast(stockout_days as {{ dbt.type_string() }})
        || ' stockout day(s): check ranging, pricing and availability' as insight
from underperformance

union all

select
    store_id, store_name, region, insight_type,
    case when pct >= 3 then 'high' when pct >= 2 then 'medium' else 'low' end as severity,
    cast(lost_sales as {{ type_double() }}) as metric_value,
    'Store ' || store_id || ' (' || region || ') lost an estimated ' || cast(cast(round(cast(lost_sales as numeric(18, 3)), 0) as bigint) as {{ dbt.type_string() }})
        || ' in sales (' || cast(round(cast(pct as numeric(18, 3)), 1) as {{ dbt.type_string() }}) || '% of its sales) over '
        || cast(stockout_days as {{ dbt.type_string() }}) || ' category stockout day(s), most in ' || category
        || ': review reorder points' as insight
from stockouts

union all

select
    store_id, store_name, region, insight_type,
    case when avg_lift < 0 then 'high' when avg_lift < 5 then 'medium' else 'low' end as severity,
    cast(avg_lift as {{ type_double() }}) as metric_value,
    'Store ' || store_id || ' (' || region || '): its ' || cast(promos as {{ dbt.type_string() }}) || ' promotions lifted sales by only '
        || cast(cast(round(cast(avg_lift as numeric(18, 3)), 0) as bigint) as {{ dbt.type_string() }})
        || '% on average against comparable days: revisit the discounts or the categories promoted' as insight
from weak_promotions

union all

select
    store_id, store_name, region, insight_type,
    case when weekend_uplift_pct <= -25 then 'medium' else 'low' end as severity,
    cast(weekend_uplift_pct as {{ type_double() }}) as metric_value,
    'Store ' || store_id || ' (' || region || ', ' || format || ') sells '
        || cast(cast(round(cast(-weekend_uplift_pct as numeric(18, 3)), 0) as bigint) as {{ dbt.type_string() }})
        || '% less per day on weekends than on weekdays: match weekend staffing and opening hours to demand' as insight
from weekend_dip
