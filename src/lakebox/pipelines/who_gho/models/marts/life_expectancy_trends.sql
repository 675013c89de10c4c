{#- Each country's life expectancy trend over the years it has: the least-squares slope of
    life expectancy on the year (so irregular years, every 5 years or with gaps, weigh as
    they fall), as change per decade, and the first and last observation. Ranked within
    the WHO region, fastest gain first. -#}

with observed as (
    select country_code, country_name, region, year, life_expectancy
    from {{ ref('life_expectancy_by_country_year') }}
    where life_expectancy is not null
),

span as (
    select
        country_code,
        max(country_name) as country_name,
        max(region) as region,
        min(year) as first_year,
        max(year) as last_year,
        count(*) as observations,
        case when count(*) > 1 then regr_slope(life_expectancy, cast(year as {{ type_double() }})) end as slope_per_year
    from observed
    group by country_code
)

select
    s.country_code,
    s.country_name,
    s.region,
    s.first_year,
    s.last_year,
    s.observations,
    f.life_expectancy as first_life_expectancy,
    l.life_expectancy as last_life_expectancy,
    l.life_expectancy - f.life_expectancy as change_over_span,
    s.slope_per_year * 10 as change_per_decade,
    rank() over (partition by s.region order by s.slope_per_year desc nulls last) as rank_in_region
from span as s
join observed as f on f.country_code = s.country_code and f.year = s.first_year
join observed as l on l.country_code = s.country_code and l.year = s.last_year
