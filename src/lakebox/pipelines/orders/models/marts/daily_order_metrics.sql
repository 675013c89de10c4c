{#- Daily order metrics by order (creation) date. Incremental: only the days touched by
    orders that arrived since the last build are recomputed. -#}
{{ config(materialized=incremental_or_table(), unique_key='order_date', incremental_strategy='delete+insert') }}

with orders as (
    select * from {{ ref('stg_orders') }}
    {% if is_incremental() %}
    where order_date in (
        select distinct order_date from {{ ref('stg_orders') }}
        where _ingested_at > (select coalesce(max(_last_ingested_at), cast('1900-01-01' as timestamp)) from {{ this }})
    )
    {% endif %}
)

select
    order_date,
    count(*) as total_orders,
    cast(sum(amount) as numeric(18, 2)) as total_amount,
    cast(avg(amount) as numeric(18, 2)) as avg_amount,
    count(distinct customer_id) as unique_customers,
    sum(case when status = 'cancelled' then 1 else 0 end) as cancelled_orders,
    cast(sum(case when status = 'refunded' then amount else 0 end) as numeric(18, 2)) as refunded_amount,
    max(_ingested_at) as _last_ingested_at
from orders
group by order_date
