"""The life-expectancy model's online inputs: a country, a year and a sex become the row
`model.SPEC.source_sql` returns for that forecast.

The forecast of `year` starts from the country's latest observation before it, looked up in
`ml.life_expectancy_features`: its value, the one before, its trend to date, how many came
before and the gap to `year`, exactly as the batch row of that country and year is built.
The model forecasts both sexes together (the marts' `both` figure): `sex` must be `both`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.ml.spec import RawInputs, RawRowsRejected

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = (("country_code", "string"), ("year", "long"), ("sex", "string"))
SEXES = ("both",)

LOOKUP_SQL = """
select country_code, region, cast(year as bigint) as year, cast(life_expectancy as double precision) as value,
       cast(prev_value as double precision) as prev_value, cast(slope_to_date as double precision) as slope_to_date,
       cast(n_previous as bigint) as n_previous
from ml.life_expectancy_features
where life_expectancy is not null
"""

FEATURES_SQL = """
with r as (
    select row_number() over () as _row, country_code, cast(year as bigint) as year from raw
)
select r.country_code, r.year, o.region, o.value as prev_value, coalesce(o.prev_value, o.value) as prev2_value,
       cast(r.year - o.year as double) as years_since_prev, coalesce(o.slope_to_date, 0) as trend_slope,
       cast(o.n_previous + 1 as double) as n_previous, o.year as _observed
from r asof left join observed as o on o.country_code = r.country_code and r.year > o.year
order by r._row
"""


def features(raw: pa.Table, lookup: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    from lakebox.ml.predict import raw_query

    sex = pc.utf8_lower(raw.column("sex").fill_null(""))
    odd = pc.unique(raw.column("sex").filter(pc.invert(pc.is_in(sex, value_set=_sexes())))).to_pylist()
    if odd:
        raise RawRowsRejected(f"column sex: {', '.join(map(repr, odd[:5]))} not modelled; the model forecasts "
                              f"both sexes together: send sex {' or '.join(SEXES)}")
    rows = raw_query(FEATURES_SQL, raw=raw, observed=lookup)
    unseen = rows.filter(pc.is_null(rows.column("_observed")))
    if unseen.num_rows:
        pairs = sorted(set(zip(unseen.column("country_code").to_pylist(), unseen.column("year").to_pylist(),
                               strict=True)))
        raise RawRowsRejected(
            f"no observation before the year asked in ml.life_expectancy_features for (country_code, year) "
            f"{', '.join(f'({c!r}, {y})' for c, y in pairs[:5])}{' ...' if len(pairs) > 5 else ''}; send a "
            f"country_code (ISO 3166 alpha-3) the warehouse has and a year after its first observation")
    return rows.drop_columns(["_observed"])


def _sexes() -> pa.Array:
    import pyarrow as pa

    return pa.array(SEXES)


RAW_INPUTS = RawInputs(COLUMNS, LOOKUP_SQL, features)
