{#- Closing stock per store, category and day, from the newest version of each file. -#}
{{ config(materialized='view') }}

with versions as (
    select file_name, batch_id,
           row_number() over (partition by file_name order by ingested_at desc, batch_id desc) as version_rank
    from (select distinct file_name, batch_id, ingested_at from {{ source('retail', 'retail_inventory') }}) as files
)

select
    i.date as inventory_date,
    i.store_id,
    i.category,
    i.on_hand_units,
    i.stockout,
    i.file_name as _file_name,
    i.batch_id as _batch_id
from {{ source('retail', 'retail_inventory') }} as i
join versions as v on v.batch_id = i.batch_id and v.version_rank = 1
