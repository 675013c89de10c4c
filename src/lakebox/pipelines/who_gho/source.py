"""The GHO source as data: where it is, what to fetch, how its pages chain.

Meant for the generic REST source (`lakebox.ingest.rest.RestSource`): OData offset paging
(`$top`/`$skip` with `$count=true`), following `@odata.nextLink` when the server sends one,
records at `$.value`, and the country dimension fetched before the indicators (the gate
checks country codes against it). The real service sends a whole indicator in one response
and never a nextLink; lakebox still pages, so a service that caps pages loses nothing.

Incremental: a GHO record's `Date` is when its value was published; a revised value comes
back with the same Id and a later Date. Pages are landed as received (a page with the same
bytes is the same batch, so a re-run with nothing new changes nothing); `Date` is the
cursor field for a server that filters (`$filter=Date gt <cursor>`), and (Id, Date) is the
contract's version key, so an overlapping fetch never loads a version twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from lakebox.errors import ConfigError, SourceFailedError
from lakebox.pipelines.who_gho.contract import COUNTRIES_SOURCE, SOURCE

API_URL_ENV: Final = "LAKEBOX_WHO_API_URL"
INDICATORS_ENV: Final = "LAKEBOX_WHO_INDICATORS"
PAGE_SIZE_ENV: Final = "LAKEBOX_WHO_PAGE_SIZE"
DEFAULT_API_URL: Final = "https://ghoapi.azureedge.net/api"
DEFAULT_INDICATORS: Final = ("WHOSIS_000001", "WHOSIS_000002")
PAGE_SIZE: Final = 5000
RECORDS_PATH: Final = "$.value"
NEXT_LINK: Final = "@odata.nextLink"
COUNT: Final = "@odata.count"
COUNTRY_PATH: Final = "DIMENSION/COUNTRY/DimensionValues"
CURSOR_FIELD: Final = "Date"
# What the offline demo serves (`lakebox who-api` defaults); the bench's size.
DEMO_COUNTRIES, DEMO_YEARS, DEMO_SEED = 190, 20, 42
_INDICATOR: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class GhoResource:
    """One thing to fetch: the ledger source it lands under, its path and first query."""

    key: str  # the resource key for per-resource state (the indicator code, or "countries")
    source: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    paged: bool = True


@dataclass(frozen=True)
class GhoSource:
    base_url: str
    indicators: tuple[str, ...]
    page_size: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GhoSource:
        """LAKEBOX_WHO_API_URL, LAKEBOX_WHO_INDICATORS (comma-separated), LAKEBOX_WHO_PAGE_SIZE."""
        raw = env.get(INDICATORS_ENV, "")
        indicators = tuple(i.strip() for i in raw.split(",") if i.strip()) or DEFAULT_INDICATORS
        bad = [i for i in indicators if not _INDICATOR.match(i)]
        if bad:
            raise ConfigError(f"{INDICATORS_ENV}: {', '.join(map(repr, bad))} is not a GHO indicator code "
                              "(letters, digits and _ , e.g. WHOSIS_000001); separate codes with commas")
        try:
            page_size = int(env.get(PAGE_SIZE_ENV, PAGE_SIZE))
        except ValueError:
            page_size = 0
        if page_size < 1:
            raise ConfigError(f"{PAGE_SIZE_ENV} must be a whole number of records >= 1, got {env.get(PAGE_SIZE_ENV)!r}")
        return cls((env.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/"), indicators, page_size)

    def resources(self) -> list[GhoResource]:
        """The country dimension first (the gate needs it), then each indicator."""
        first_page = {"$top": str(self.page_size), "$skip": "0", "$count": "true"}
        return [GhoResource("countries", COUNTRIES_SOURCE, COUNTRY_PATH, paged=False)] + [
            GhoResource(code, SOURCE, quote(code), dict(first_page)) for code in self.indicators
        ]


def next_request(doc: Mapping[str, Any], params: Mapping[str, str]) -> str | dict[str, str] | None:
    """What to ask for after the page `doc` (fetched with `params`): the server's
    `@odata.nextLink` URL when it sent one; else the next `$skip` when this page was full and
    `@odata.count` says more records follow; None at the end."""
    link = doc.get(NEXT_LINK)
    if isinstance(link, str) and link:
        return link
    records = doc.get("value") or []
    top, skip = int(params.get("$top", 0) or 0), int(params.get("$skip", 0) or 0)
    total = doc.get(COUNT)
    if not top or len(records) < top or (isinstance(total, int) and skip + len(records) >= total):
        return None
    return {**params, "$skip": str(skip + len(records))}


def since_filter(cursor: str) -> dict[str, str]:
    """The query that asks only for values published after `cursor` (an ISO time)."""
    return {"$filter": f"{CURSOR_FIELD} gt {cursor}"}


def unknown_indicator_error(indicator: str, url: str) -> SourceFailedError:
    """What a 404 on an indicator means, and what to do about it."""
    return SourceFailedError(
        f"source {SOURCE}: GHO has no indicator {indicator!r} ({url} answered 404). Check {INDICATORS_ENV} "
        f"against {url.rsplit('/', 1)[0]}/Indicator (codes are case-sensitive, e.g. WHOSIS_000001)"
    )


@contextmanager
def bundled_gho_api(countries: int = DEMO_COUNTRIES, years: int = DEMO_YEARS, seed: int = DEMO_SEED,
                    revision: int = 0) -> Iterator[str]:
    """The stand-in started in-process on a free loopback port, for the offline demo and tests:
    set LAKEBOX_WHO_API_URL to the URL it yields."""
    from lakebox.pipelines.who_gho.api import serve

    with serve(countries=countries, years=years, seed=seed, revision=revision) as server:
        yield server.url
