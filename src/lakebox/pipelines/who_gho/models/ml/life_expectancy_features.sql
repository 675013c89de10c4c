{#- One row per country and observed year, for predicting a country's next observation.
    Lag features come strictly from earlier observations (prev_value, prev2_value,
    years_since_prev, trend_slope over every earlier observation, n_previous); the target
    is life_expectancy. next_year / next_value are the country's following observation
    (null on its latest row), and slope_to_date (the trend including this year) is what a
    forecast of the next observation starting from this row uses as its trend. Years need
    not be consecutive: gaps are features, not assumptions. -#}

with observed as (
    select country_code, region, year, life_expectancy
    from {{ ref('life_expectancy_by_country_year') }}
    where life_expectancy is not null
),

lagged as (
    select
        observed.*,
        lag(year) over by_year as prev_year,
        lag(life_expectancy) over by_year as prev_value,
        lag(life_expectancy, 2) over by_year as prev2_value,
        row_number() over by_year - 1 as n_previous,
        -- a slope needs two points (DuckDB gives NaN for one, PostgreSQL null): null until then
        case when row_number() over by_year > 2 then regr_slope(life_expectancy, cast(year as {{ type_double() }})) over (
            partition by country_code order by year rows between unbounded preceding and 1 preceding
        ) end as trend_slope,
        case when row_number() over by_year > 1 then regr_slope(life_expectancy, cast(year as {{ type_double() }})) over (
            partition by country_code order by year rows between unbounded preceding and current row
        ) end as slope_to_date,
        lead(year) over by_year as next_year,
        lead(life_expectancy) over by_year as next_value
    from observed
    window by_year as (partition by country_code order by year)
)

select
    country_code,
    region,
    year,
    life_expectancy,
    prev_year,
    prev_value,
    prev2_value,
    year - prev_year as years_since_prev,
    trend_slope,
    n_previous,
    slope_to_date,
    next_year,
    next_value,
    next_year - year as years_to_next
from lagged
