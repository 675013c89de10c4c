{#- Promotions from the newest version of each file; a promotion re-sent in a later file
    takes its latest terms. -#}
{{ config(materialized='view') }}

with versions as (
    select file_name, batch_id,
           row_number() over (partition by file_name order by ingested_at desc, batch_id desc) as version_rank
    from (select distinct file_name, batch_id, ingested_at from {{ source('retail', 'retail_promotions') }}) as files
),

current_rows as (
    select p.*, row_number() over (partition by p.promo_id order by p.ingested_at desc, p.batch_id desc) as promo_rank
    from {{ source('retail', 'retail_promotions') }} as p
    join versions as v on v.batch_id = p.batch_id and v.version_rank = 1
)

select
    promo_id,
    store_id,
    category,
    start_date,
    end_date,
    cast(discount_pct as {{ type_double() }}) as discount_pct,
    file_name as _file_name,
    batch_id as _batch_id
from current_rows
where promo_rank = 1
