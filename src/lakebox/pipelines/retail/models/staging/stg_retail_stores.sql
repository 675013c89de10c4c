{#- The store master from the newest version of stores.csv. -#}
{{ config(materialized='view') }}

with newest as (
    select batch_id from {{ source('retail', 'retail_stores') }}
    order by ingested_at desc, batch_id desc
    limit 1
)

select
    store_id,
    store_name,
    region,
    format,
    opened_on,
    batch_id as _batch_id
from {{ source('retail', 'retail_stores') }}
where batch_id in (select batch_id from newest)
