{#- How many more years women live than men, per country and year where GHO has both sexes. -#}

select
    country_code,
    country_name,
    region,
    year,
    life_expectancy_male,
    life_expectancy_female,
    life_expectancy_female - life_expectancy_male as sex_gap,
    healthy_life_expectancy_female - healthy_life_expectancy_male as healthy_sex_gap
from {{ ref('life_expectancy_by_country_year') }}
where life_expectancy_male is not null and life_expectancy_female is not null
