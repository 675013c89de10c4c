{#- Sales per store, category and day, from the newest version of each daily file: a
    corrected file replaces every row of the version it corrects. -#}
{{ config(materialized='view') }}

with versions as (
    select file_name, batch_id,
           row_number() over (partition by file_name order by ingested_at desc, batch_id desc) as version_rank
    from (select distinct file_name, batch_id, ingested_at from {{ source('retail', 'retail_daily_sales') }}) as files
)

select
    s.date as sales_date,
    s.store_id,
    s.category,
    cast(s.total_sales as {{ type_double() }}) as total_sales,
    s.transaction_count,
    cast(s.discount_pct as {{ type_double() }}) as discount_pct,
    {{ is_weekend('s.date') }} as is_weekend,
    s.file_name as _file_name,
    s.batch_id as _batch_id
from {{ source('retail', 'retail_daily_sales') }} as s
join versions as v on v.batch_id = s.batch_id and v.version_rank = 1
