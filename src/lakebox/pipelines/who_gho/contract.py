"""The GHO sources' contracts, declared once: they drive checks, raw DDL and docs.

Columns are GHO's field names in snake_case (`NumericValue` → `numeric_value`; the reader
renames them, see `FIELDS`), so that they read the same on DuckDB and PostgreSQL. A field
GHO adds or renames keeps its own name, and shows up as drift. Rules beyond one
record's columns (a reason for every missing value, country codes known from the country
dimension) are in `gate.py`.
"""

import re

from lakebox.quality import Column, Contract


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


SEX_CODES = ("SEX_BTSX", "SEX_MLE", "SEX_FMLE")
SOURCE = "who_gho"
COUNTRIES_SOURCE = "who_gho_countries"

OBSERVATIONS = Contract(
    source=SOURCE,
    table="raw.who_observations",
    description=(
        "One row per GHO record as sent by `GET /{IndicatorCode}` (the `value` array of an OData page), "
        "batch-tagged. A revised value arrives as the same Id with a later `Date`; raw keeps both."
    ),
    columns=(
        Column("id", "integer", nullable=False, description="GHO's record id"),
        Column("indicator_code", "string", nullable=False, description="e.g. WHOSIS_000001"),
        Column("spatial_dim_type", "string", nullable=False, description="COUNTRY, REGION or GLOBAL"),
        Column("spatial_dim", "string", nullable=False, description="ISO 3166-1 alpha-3 code, or a region code"),
        Column("parent_location_code", "string", description="WHO region of a country (AFR, AMR, SEAR, EUR, EMR, WPR)"),
        Column("time_dim_type", "string", nullable=False, accepted=("YEAR",)),
        Column("parent_location", "string", description="the region's name"),
        Column("dim1_type", "string"),
        Column("time_dim", "integer", nullable=False, min=1900, max=2100, description="the year"),
        Column("dim1", "string", nullable=False, accepted=SEX_CODES, description="sex: both, male, female"),
        Column("dim2_type", "string"),
        Column("dim2", "string"),
        Column("dim3_type", "string"),
        Column("dim3", "string"),
        Column("data_source_dim_type", "string"),
        Column("data_source_dim", "string"),
        Column("value", "string", description='display text, e.g. "61.76 [56.88-67.01]", or why there is none'),
        Column("numeric_value", "double", min=0, max=120, description="years; null only with a reason in Value or Comments"),
        Column("low", "double", min=0, max=120, description="lower bound of the uncertainty interval"),
        Column("high", "double", min=0, max=120, description="upper bound of the uncertainty interval"),
        Column("comments", "string"),
        Column("date", "timestamp", nullable=False, description="when GHO published this value"),
        Column("time_dimension_value", "string"),
        Column("time_dimension_begin", "timestamp"),
        Column("time_dimension_end", "timestamp"),
    ),
    unique_key=("indicator_code", "spatial_dim", "time_dim", "dim1"),
    version_key=("id", "date"),
)

COUNTRIES = Contract(
    source=COUNTRIES_SOURCE,
    table="raw.who_countries",
    description="GHO's country dimension (`GET /DIMENSION/COUNTRY/DimensionValues`): names and WHO regions.",
    columns=(
        Column("code", "string", nullable=False, description="ISO 3166-1 alpha-3 code"),
        Column("title", "string", nullable=False, description="the country's name"),
        Column("dimension", "string", nullable=False, accepted=("COUNTRY",)),
        Column("parent_dimension", "string"),
        Column("parent_code", "string", description="WHO region code"),
        Column("parent_title", "string", description="WHO region name"),
    ),
    unique_key=("code",),
)

GHO_FIELDS = ("Id", "IndicatorCode", "SpatialDimType", "SpatialDim", "ParentLocationCode", "TimeDimType",
              "ParentLocation", "Dim1Type", "TimeDim", "Dim1", "Dim2Type", "Dim2", "Dim3Type", "Dim3",
              "DataSourceDimType", "DataSourceDim", "Value", "NumericValue", "Low", "High", "Comments", "Date",
              "TimeDimensionValue", "TimeDimensionBegin", "TimeDimensionEnd", "Code", "Title", "Dimension",
              "ParentDimension", "ParentCode", "ParentTitle")
# GHO field -> raw column, for the page reader.
FIELDS: dict[str, str] = {name: _snake(name) for name in GHO_FIELDS}
