{#- One row per station and day: the day's readings, coldest, warmest and mean. -#}
select
    station,
    reading_date,
    count(*) as readings,
    min(temperature_c) as min_temperature_c,
    max(temperature_c) as max_temperature_c,
    round(cast(avg(temperature_c) as numeric), 2) as mean_temperature_c
from {{ ref('stg_weather_readings') }}
group by station, reading_date
