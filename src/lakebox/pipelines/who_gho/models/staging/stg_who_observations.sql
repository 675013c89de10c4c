{#- One row per indicator, country, year and sex: the latest published version. A revised
    value (same record, later `date`) replaces the old one here; raw keeps both. Regional
    and global aggregates are left out: the marts aggregate countries themselves. -#}

with countries as (
    select
        code as country_code,
        title as country_name,
        parent_code as region,
        parent_title as region_name,
        row_number() over (partition by code order by ingested_at desc, batch_id desc) as newest
    from {{ source('who_gho', 'who_countries') }}
),

versions as (
    select
        o.*,
        row_number() over (
            partition by indicator_code, spatial_dim, time_dim, dim1
            order by date desc, ingested_at desc, batch_id desc
        ) as version_rank
    from {{ source('who_gho', 'who_observations') }} as o
    where spatial_dim_type = 'COUNTRY'
)

select
    v.indicator_code as indicator,
    v.spatial_dim as country_code,
    coalesce(c.country_name, v.spatial_dim) as country_name,
    coalesce(c.region, v.parent_location_code) as region,
    coalesce(c.region_name, v.parent_location) as region_name,
    cast(v.time_dim as integer) as year,
    case v.dim1 when 'SEX_BTSX' then 'both' when 'SEX_MLE' then 'male' when 'SEX_FMLE' then 'female' end as sex,
    cast(v.numeric_value as {{ type_double() }}) as value,
    cast(v.low as {{ type_double() }}) as low,
    cast(v.high as {{ type_double() }}) as high,
    v.comments as comments,
    v.date as published_at,
    v.batch_id as _batch_id,
    v.ingested_at as _ingested_at
from versions as v
left join countries as c on c.country_code = v.spatial_dim and c.newest = 1
where v.version_rank = 1
