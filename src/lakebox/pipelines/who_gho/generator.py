"""Realistic GHO life-expectancy records for the stand-in API, deterministic by seed.

Each country has a level, a trend and a sex gap: life expectancy rises by a few tenths of a
year per year around its region's pace, women outlive men by a few years, and healthy life
expectancy (WHOSIS_000002) sits some 10-14% below life expectancy (WHOSIS_000001). About one
country in seven reports every five years only and some miss a year, as in the real data,
so nothing downstream may assume consecutive years. A few values are not published (a null
NumericValue with a comment saying why). Regional and global aggregates come with the
countries, as GHO sends them.

`revision` > 0 re-estimates the latest five years of about 8% of the countries and
re-publishes them with a later `Date`, as GHO does when new data for a country arrives:
same Id, new value, new publication date (and the regional means over them too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from lakebox.errors import ConfigError
from lakebox.pipelines.who_gho.countries import COUNTRIES, REGIONS

INDICATORS: Final = {
    "WHOSIS_000001": "Life expectancy at birth (years)",
    "WHOSIS_000002": "Healthy life expectancy (HALE) at birth (years)",
}
SEXES: Final = ("SEX_BTSX", "SEX_MLE", "SEX_FMLE")
LAST_YEAR: Final = 2021
PUBLISHED: Final = dt.datetime(2024, 8, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
REVISED_SHARE: Final = 0.08  # of the countries, per revision
NOT_PUBLISHED: Final = "Estimate not published: fewer than 90 000 inhabitants in this year"
# Both-sexes life expectancy in the first year, and years gained per year, by region.
_REGION_LEVEL: Final = {"AFR": 52.0, "AMR": 73.5, "SEAR": 64.0, "EUR": 73.0, "EMR": 65.0, "WPR": 71.5}
_REGION_TREND: Final = {"AFR": 0.55, "AMR": 0.15, "SEAR": 0.35, "EUR": 0.25, "EMR": 0.22, "WPR": 0.28}


@dataclass(frozen=True)
class GhoData:
    """What the stand-in serves: each indicator's records (ordered by Id) and the country dimension."""

    observations: dict[str, list[dict[str, Any]]]
    countries: list[dict[str, Any]]


def generate_gho(countries: int = 190, years: int = 20, seed: int = 0, revision: int = 0) -> GhoData:
    if not 1 <= countries <= len(COUNTRIES):
        raise ConfigError(f"who-api: --countries must be from 1 to {len(COUNTRIES)}, got {countries}")
    if not 2 <= years <= 60:
        raise ConfigError(f"who-api: --years must be from 2 to 60, got {years}")
    if revision < 0:
        raise ConfigError(f"who-api: --revise must be 0 or more, got {revision}")
    chosen = COUNTRIES[:countries]
    rng = np.random.default_rng(seed)
    n = len(chosen)
    first_year = LAST_YEAR - years + 1
    region = [r for _, _, r in chosen]
    level = np.array([_REGION_LEVEL[r] for r in region]) + rng.normal(0, 3.0, n)
    trend = np.array([_REGION_TREND[r] for r in region]) + rng.normal(0, 0.08, n)
    sex_gap = rng.uniform(3.0, 7.5, n)
    hale_share = rng.uniform(0.86, 0.90, n)
    every_fifth = rng.random(n) < 0.15
    skipped = np.where(~every_fifth & (rng.random(n) < 0.1), rng.integers(first_year, LAST_YEAR, n), 0)

    rows: list[tuple[int, int, str, float, float]] = []  # (country index, year, sex, LE, HALE)
    for i in range(n):
        for year in range(first_year, LAST_YEAR + 1):
            if (every_fifth[i] and (LAST_YEAR - year) % 5) or year == skipped[i]:
                continue
            both = level[i] + trend[i] * (year - first_year) + rng.normal(0, 0.3)
            for sex, shift in zip(SEXES, (0.0, -sex_gap[i] / 2, sex_gap[i] / 2), strict=True):
                value = both + shift + (rng.normal(0, 0.15) if shift else 0.0)
                rows.append((i, year, sex, value, value * hale_share[i] + rng.normal(0, 0.2)))
    values = np.array([[r[3], r[4]] for r in rows])
    half_width = rng.uniform(1.5, 5.0, (len(rows), 2))
    unpublished = rng.random(len(rows)) < 0.003
    revised = np.zeros((len(rows), 2), dtype=bool)
    if revision:  # new data for a few countries: their latest five years are re-estimated
        revise_rng = np.random.default_rng([seed, revision])
        countries_revised = revise_rng.choice(n, max(1, round(n * REVISED_SHARE)), replace=False)
        recent = np.array([r[0] in countries_revised and r[1] > LAST_YEAR - 5 for r in rows])
        revised = np.repeat(recent[:, None], 2, axis=1)
        shift = revise_rng.choice([-1.0, 1.0], values.shape) * revise_rng.uniform(0.2, 1.2, values.shape)
        values = values + revised * shift

    observations: dict[str, list[dict[str, Any]]] = {}
    for k, code in enumerate(INDICATORS):
        records = []
        for j, (i, year, sex, *_ ) in enumerate(rows):
            value = None if unpublished[j] else float(values[j, k])
            published = PUBLISHED + dt.timedelta(days=200 * revision) if revised[j, k] else PUBLISHED
            records.append(gho_record(1_000_000 * (k + 1) + j, code, "COUNTRY", chosen[i][0], region[i], year, sex,
                                   value, float(half_width[j, k]), published))
        records += _aggregates(code, rows, values[:, k], unpublished, revised[:, k], region,
                               1_000_000 * (k + 1) + 900_000, PUBLISHED + dt.timedelta(days=200 * revision))
        observations[code] = records
    dimension = [
        {"Code": code, "Title": name, "Dimension": "COUNTRY", "ParentDimension": "REGION",
         "ParentCode": reg, "ParentTitle": REGIONS[reg]}
        for code, name, reg in chosen
    ]
    return GhoData(observations, dimension)


def _aggregates(
    code: str, rows: list[tuple[int, int, str, float, float]], values: np.ndarray, unpublished: np.ndarray,
    revised: np.ndarray, region: list[str], first_id: int, revised_on: dt.datetime,
) -> list[dict[str, Any]]:
    """Regional and global means, as GHO sends them beside the countries; a mean over a
    revised value is re-published with it."""
    sums: dict[tuple[str, int, str], list[float]] = {}
    touched: set[tuple[str, int, str]] = set()
    for j, (i, year, sex, *_) in enumerate(rows):
        if not unpublished[j]:
            for place in (region[i], "GLOBAL"):
                sums.setdefault((place, year, sex), []).append(float(values[j]))
                if revised[j]:
                    touched.add((place, year, sex))
    records = []
    for n, (key, vals) in enumerate(sorted(sums.items())):
        place, year, sex = key
        kind = "GLOBAL" if place == "GLOBAL" else "REGION"
        published = revised_on if key in touched else PUBLISHED
        records.append(gho_record(first_id + n, code, kind, place, None, year, sex, sum(vals) / len(vals), 0.8,
                                  published))
    return records


def gho_record(
    id_: int, code: str, kind: str, place: str, region: str | None, year: int, sex: str,
    value: float | None, half_width: float, published: dt.datetime,
) -> dict[str, Any]:
    """One record with GHO's field set and order (ParentLocation* in newer records)."""
    low = high = None
    text: str | None = None
    if value is not None:
        low, high = round(value - half_width, 2), round(value + half_width, 2)
        text = f"{value:.2f} [{low:.2f}-{high:.2f}]"
    offset = "+01:00"
    return {
        "Id": id_,
        "IndicatorCode": code,
        "SpatialDimType": kind,
        "SpatialDim": place,
        "ParentLocationCode": region,
        "TimeDimType": "YEAR",
        "ParentLocation": REGIONS.get(region or ""),
        "Dim1Type": "SEX",
        "TimeDim": year,
        "Dim1": sex,
        "Dim2Type": None,
        "Dim2": None,
        "Dim3Type": None,
        "Dim3": None,
        "DataSourceDimType": None,
        "DataSourceDim": None,
        "Value": text,
        "NumericValue": None if value is None else round(value, 5),
        "Low": low,
        "High": high,
        "Comments": NOT_PUBLISHED if value is None else None,
        "Date": published.isoformat(timespec="milliseconds"),
        "TimeDimensionValue": str(year),
        "TimeDimensionBegin": f"{year}-01-01T00:00:00{offset}",
        "TimeDimensionEnd": f"{year}-12-31T00:00:00{offset}",
    }
