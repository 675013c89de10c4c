{#- One row per country and year it has any observation for: life expectancy (WHOSIS_000001)
    and healthy life expectancy (WHOSIS_000002) at birth, both sexes with the uncertainty
    interval, and each sex where GHO has it. -#}

{%- set measures = [('WHOSIS_000001', 'life_expectancy'), ('WHOSIS_000002', 'healthy_life_expectancy')] %}

select
    country_code,
    max(country_name) as country_name,
    max(region) as region,
    max(region_name) as region_name,
    year,
    {%- for code, name in measures %}
    max(case when indicator = '{{ code }}' and sex = 'both' then value end) as {{ name }},
    max(case when indicator = '{{ code }}' and sex = 'both' then low end) as {{ name }}_low,
    max(case when indicator = '{{ code }}' and sex = 'both' then high end) as {{ name }}_high,
    max(case when indicator = '{{ code }}' and sex = 'male' then value end) as {{ name }}_male,
    max(case when indicator = '{{ code }}' and sex = 'female' then value end) as {{ name }}_female,
    {%- endfor %}
    max(published_at) as published_at
from {{ ref('stg_who_observations') }}
where indicator in ('WHOSIS_000001', 'WHOSIS_000002')
group by country_code, year
