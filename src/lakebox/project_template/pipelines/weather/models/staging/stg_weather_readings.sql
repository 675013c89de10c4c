{#- The latest version of each reading (a page may be fetched again). -#}
with ranked as (
    select
        station,
        measured_at,
        temperature_c,
        row_number() over (partition by station, measured_at order by ingested_at desc, batch_id desc) as version_rank
    from {{ source('weather', 'weather_readings') }}
)

select station, measured_at, cast(measured_at as date) as reading_date, temperature_c
from ranked
where version_rank = 1
