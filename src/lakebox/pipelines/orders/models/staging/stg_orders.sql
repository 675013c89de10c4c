{#- The latest version of each order. Incremental: only batches ingested since the last
    build are read, and an order is replaced only by a newer version of itself. -#}
{{ config(materialized=incremental_or_table(), unique_key='order_id', incremental_strategy='delete+insert') }}

with arrived as (
    select * from {{ source('orders', 'orders') }}
    {% if is_incremental() %}
    where ingested_at > (select coalesce(max(_ingested_at), cast('1900-01-01' as timestamp)) from {{ this }})
    {% endif %}
),

ranked as (
    select
        arrived.*,
        row_number() over (partition by order_id order by updated_at desc, ingested_at desc, batch_id desc) as version_rank
    from arrived
)

select
    order_id,
    customer_id,
    cast(amount as numeric(18, 2)) as amount,
    upper(currency) as currency,
    status,
    created_at,
    updated_at,
    cast(created_at as date) as order_date,
    batch_id as _batch_id,
    ingested_at as _ingested_at
from ranked
where version_rank = 1
{% if is_incremental() %}
  and not exists (
      select 1 from {{ this }} as existing
      where existing.order_id = ranked.order_id and existing.updated_at > ranked.updated_at
  )
{% endif %}
