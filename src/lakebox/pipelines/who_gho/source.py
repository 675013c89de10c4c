"""The GHO source: the GHO OData API as a configuration of the shared REST source.

The country dimension is fetched first (the gate checks country codes against it), then
each indicator in `LAKEBOX_WHO_INDICATORS`. Pages: `$top`/`$skip` with `$count=true`
(`Offset`, stopping at `@odata.count`), following `@odata.nextLink` whenever a server sends
one; records at `$.value`. The real service sends a whole indicator in one response and
never a nextLink; lakebox still pages, so a service that caps pages loses nothing.

Re-runs: each response lands as received, and a page with the same bytes is the same batch,
so a re-run with nothing new loads nothing. GHO revises estimates in place: a revised value
comes back with the same Id and a later `Date` (its publication time); the page carrying it
is new bytes, a new batch; raw keeps both versions and staging the latest published one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from lakebox.errors import ConfigError
from lakebox.pipelines.who_gho.contract import COUNTRIES_SOURCE, SOURCE

if TYPE_CHECKING:
    from lakebox.ingest.rest import RestSource
    from lakebox.runner import RunContext, StageResult
    from lakebox.settings import PipelineSettings

PIPELINE: Final = "who_gho"
DEFAULT_API_URL: Final = "https://ghoapi.azureedge.net/api"
DEFAULT_INDICATORS: Final = ("WHOSIS_000001", "WHOSIS_000002")
PAGE_SIZE: Final = 5000
RECORDS_PATH: Final = "$.value"
COUNTRY_PATH: Final = "/DIMENSION/COUNTRY/DimensionValues"
UNKNOWN_INDICATOR: Final = (
    "source {source}: GHO has no indicator {resource!r} ({url} answered 404). Check LAKEBOX_WHO_INDICATORS "
    "against the API's /Indicator list (codes are case-sensitive, e.g. WHOSIS_000001)"
)
_INDICATOR: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class GhoSource:
    base_url: str
    indicators: tuple[str, ...]
    page_size: int

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> GhoSource:
        """api_url, indicators (comma-separated), page_size: LAKEBOX_WHO_API_URL,
        LAKEBOX_WHO_INDICATORS, LAKEBOX_WHO_PAGE_SIZE."""
        raw = settings["indicators"] or ""
        indicators = tuple(i.strip() for i in raw.split(",") if i.strip()) or DEFAULT_INDICATORS
        bad = [i for i in indicators if not _INDICATOR.match(i)]
        if bad:
            raise ConfigError(f"LAKEBOX_WHO_INDICATORS: {', '.join(map(repr, bad))} is not a GHO indicator code "
                              "(letters, digits and _ , e.g. WHOSIS_000001); separate codes with commas")
        page_size = settings.integer("page_size")
        if page_size < 1:
            raise ConfigError(f"LAKEBOX_WHO_PAGE_SIZE must be a whole number of records >= 1, got {page_size}")
        return cls((settings["api_url"] or DEFAULT_API_URL).rstrip("/"), indicators, page_size)

    def countries(self) -> RestSource:
        from lakebox.ingest.rest import RestSource

        return RestSource(source=COUNTRIES_SOURCE, base_url=self.base_url, path=COUNTRY_PATH, records=RECORDS_PATH)

    def observations(self) -> RestSource:
        from lakebox.ingest.rest import ODataNextLink, Offset, Resource, RestSource

        return RestSource(
            source=SOURCE,
            base_url=self.base_url,
            path="/{indicator}",
            records=RECORDS_PATH,
            pagination=ODataNextLink(fallback=Offset("$skip", "$top", self.page_size, "@odata.count",
                                                     extra={"$count": "true"})),
            resources=[Resource(key=code, path_vars={"indicator": code}) for code in self.indicators],
            statuses={404: UNKNOWN_INDICATOR},
        )


def fetch_gho(ctx: RunContext) -> StageResult:
    """Land the country dimension, then every page of every indicator."""
    from lakebox.runner import StageResult

    gho = GhoSource.from_settings(ctx.settings.pipeline(PIPELINE))
    countries, observations = gho.countries().fetch(ctx), gho.observations().fetch(ctx)
    return StageResult(rows_in=countries.rows_in + observations.rows_in,
                       rows_out=countries.rows_out + observations.rows_out)
