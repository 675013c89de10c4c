"""The GHO sources' contracts, declared once: they drive checks, raw DDL and docs.

Columns keep GHO's field names (the raw tables hold records as received; PostgreSQL folds
the unquoted names to lower case, DuckDB matches them either way). Rules beyond one
record's columns (a reason for every missing value, country codes known from the country
dimension) are in `gate.py`.
"""

from lakebox.quality import Column, Contract

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
        Column("Id", "integer", nullable=False, description="GHO's record id"),
        Column("IndicatorCode", "string", nullable=False, description="e.g. WHOSIS_000001"),
        Column("SpatialDimType", "string", nullable=False, description="COUNTRY, REGION or GLOBAL"),
        Column("SpatialDim", "string", nullable=False, description="ISO 3166-1 alpha-3 code, or a region code"),
        Column("ParentLocationCode", "string", description="WHO region of a country (AFR, AMR, SEAR, EUR, EMR, WPR)"),
        Column("TimeDimType", "string", nullable=False, accepted=("YEAR",)),
        Column("ParentLocation", "string", description="the region's name"),
        Column("Dim1Type", "string"),
        Column("TimeDim", "integer", nullable=False, min=1900, max=2100, description="the year"),
        Column("Dim1", "string", nullable=False, accepted=SEX_CODES, description="sex: both, male, female"),
        Column("Dim2Type", "string"),
        Column("Dim2", "string"),
        Column("Dim3Type", "string"),
        Column("Dim3", "string"),
        Column("DataSourceDimType", "string"),
        Column("DataSourceDim", "string"),
        Column("Value", "string", description='display text, e.g. "61.76 [56.88-67.01]", or why there is none'),
        Column("NumericValue", "double", min=0, max=120, description="years; null only with a reason in Value or Comments"),
        Column("Low", "double", min=0, max=120, description="lower bound of the uncertainty interval"),
        Column("High", "double", min=0, max=120, description="upper bound of the uncertainty interval"),
        Column("Comments", "string"),
        Column("Date", "timestamp", nullable=False, description="when GHO published this value"),
        Column("TimeDimensionValue", "string"),
        Column("TimeDimensionBegin", "timestamp"),
        Column("TimeDimensionEnd", "timestamp"),
    ),
    unique_key=("IndicatorCode", "SpatialDim", "TimeDim", "Dim1"),
    version_key=("Id", "Date"),
)

COUNTRIES = Contract(
    source=COUNTRIES_SOURCE,
    table="raw.who_countries",
    description="GHO's country dimension (`GET /DIMENSION/COUNTRY/DimensionValues`): names and WHO regions.",
    columns=(
        Column("Code", "string", nullable=False, description="ISO 3166-1 alpha-3 code"),
        Column("Title", "string", nullable=False, description="the country's name"),
        Column("Dimension", "string", nullable=False, accepted=("COUNTRY",)),
        Column("ParentDimension", "string"),
        Column("ParentCode", "string", description="WHO region code"),
        Column("ParentTitle", "string", description="WHO region name"),
    ),
    unique_key=("Code",),
)
