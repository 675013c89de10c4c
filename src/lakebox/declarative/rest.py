"""The REST source of a declarative pipeline: each `[[source.resources]]` is one RestSource.

A resource lands under its own ledger source `<pipeline>_<resource>` (its lake folder,
cursor, quarantine items and raw table), so each is fetched on its own: one that fails does
not stop the others, and the stage fails once at the end naming each failure. Retries
(Retry-After, rate-limit resets), the paging bounds, the stop at a repeated next request and
the quarantine of a page that stays unreadable are the RestSource's own, as for the bundled
sources. dlt's paginators map onto its pagination classes; where the API gives no total an
empty page ends paging. Credentials come only from the environment variables the config
names; a missing one fails the stage before anything is asked, naming the variable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from lakebox.declarative.names import normalise_all
from lakebox.errors import ConfigError, SourceFailedError
from lakebox.ingest.json_pages import PageReader
from lakebox.ingest.rest import (
    Auth,
    BaseUrl,
    BasicAuth,
    Credentials,
    CursorInBody,
    Incremental,
    JsonLink,
    LinkHeader,
    Offset,
    PageNumber,
    Pagination,
    PagingStoppedError,
    QueryKey,
    RestSource,
    UntilEmpty,
    dotted,
    raise_for_failures,
)
from lakebox.stage import StageResult

if TYPE_CHECKING:
    from lakebox.declarative.config import AuthConfig, PaginatorConfig, PipelineConfig, ResourceConfig
    from lakebox.stage import RunContext

OVERLAP = dt.timedelta(seconds=1)  # append with a version_field: asked again from this far before the cursor
BASE_URL = "base_url"  # the pipeline's setting (LAKEBOX_<NAME>_BASE_URL) that overrides source.base_url


def fetch(ctx: RunContext, config: PipelineConfig, base: BaseUrl | None = None,
          tune: Callable[[RestSource], RestSource] | None = None) -> StageResult:
    """Land every new page of every resource; rows are the records landed. A pipeline's own
    Python may give `base` (a URL, or a context manager of one: orders starts its bundled
    API so) instead of the base_url setting, and `tune` each resource's RestSource."""
    if config.source.type != "rest":
        raise ConfigError(f"{config.path}: source.type is {config.source.type!r}; only a rest source is fetched")
    url = base_url(ctx, config) if base is None else base
    auth = credentials(config)
    if auth is not None:  # a missing credential fails once, before anything is asked, not once per resource
        auth.sign(ctx.settings.env, config.name)
    rows = 0
    failures: list[tuple[str, SourceFailedError]] = []
    resources = config.source.resources
    for number, resource in enumerate(resources):
        try:
            source = rest_source(config, resource, url)
            rows += (tune(source) if tune else source).fetch(ctx).rows_in
        except PagingStoppedError as exc:  # a runaway API: its other resources are not asked either
            skipped = ", ".join(r.name for r in resources[number + 1:])
            earlier = "".join(f"; {name}: {error}" for name, error in failures)
            raise PagingStoppedError(f"{exc}{earlier}" + (f"; not asked in this run: {skipped}" if skipped else "")
                                     ) from exc
        except SourceFailedError as exc:  # this resource's fault (logged by its source): the others are still fetched
            failures.append((resource.name, exc))
    raise_for_failures(config.name, failures, len(resources))
    return StageResult(rows_in=rows, rows_out=rows)


def reader_for(config: PipelineConfig, resource: ResourceConfig) -> PageReader:
    """Reads `resource`'s landed pages as rows: the records at its data_selector, with
    column names normalised as dlt does (`Country Name` -> `country_name`)."""
    return PageReader(resource.data_selector, name_columns=normalise_all)


def base_url(ctx: RunContext, config: PipelineConfig) -> str:
    """The pipeline's base_url setting (LAKEBOX_<NAME>_BASE_URL, else source.base_url)."""
    settings = ctx.settings.pipelines.get(config.name)
    declared = settings is not None and BASE_URL in settings.resolved
    url = (settings[BASE_URL] if settings is not None and declared else None) or config.source.base_url
    if not url:
        variable = (settings.variables.get(BASE_URL) if settings is not None else None) or \
            f"LAKEBOX_{config.name.upper()}_BASE_URL"
        raise ConfigError(f"{config.path}: source.base_url is not set and neither is {variable}; "
                          "set one to the API's base URL (e.g. https://api.example.org)")
    return url


def rest_source(config: PipelineConfig, resource: ResourceConfig, base: BaseUrl) -> RestSource:
    """`resource` as the generic REST source, under its ledger source `<pipeline>_<resource>`
    (`base` a URL, or a context manager of one as a coded pipeline may give)."""
    where = f"{config.path}: source.resources[{resource.name}]"
    if not resource.path:
        raise ConfigError(f"{where}.path is missing; give the endpoint's path, e.g. path = \"/v1/readings\"")
    inc = resource.incremental
    auth = config.source.auth
    toml = _literal(str(config.path))
    statuses = {404: f"source {{source}}: {{url}} was not found (HTTP {{status}}); check the resource's path "
                     f"and base_url in {toml}"}
    statuses.update(dict.fromkeys((401, 403), _refused(auth, toml)) if auth else {401: (
        f"source {{source}}: the API asks for credentials (HTTP {{status}}) and {toml} gives none; add "
        "[source] auth (bearer, api_key or basic), naming the environment variables that hold them")})
    return RestSource(
        source=config.ledger_source(resource),
        base_url=base,
        path=_literal("/" + resource.path.lstrip("/")),
        records=resource.data_selector,
        pagination=pagination(resource.paginator or config.source.paginator, f"{where}.paginator"),
        params=dict(resource.params),
        # an API's order is not known: the cursor moves only once the resource's last page landed, so a
        # crash part-way asks again from the old cursor rather than skipping what it had not reached
        # append with a version_field skips a version already loaded, so the next run may ask
        # again from just before the cursor (a record stamped in its last moment but sent late
        # is not missed); otherwise the cursor is where it left off
        incremental=Incremental(inc.cursor_path, inc.param,
                                overlap=OVERLAP if resource.version_field and
                                resource.write_disposition == "append" else None,
                                start=None if inc.initial_value is None else str(inc.initial_value),
                                newest_first=True) if inc else None,
        auth=credentials(config),
        headers=dict(config.source.headers),
        statuses=statuses,
        unreadable_hint=(f"the API sent a page that is not JSON with a list of records at data_selector "
                         f"{resource.data_selector!r}; it was retried. Inspect the item: if the API recovers, "
                         f"the next run asks for it again and nothing is lost; if its pages have the records "
                         f"elsewhere, fix data_selector in {config.path}"),
    )


def pagination(paginator: PaginatorConfig | None, where: str) -> Pagination | None:
    """dlt's paginator as the REST source's pagination (None: one request); dlt's defaults
    where a key is left out (`next`, `cursors.next`, `cursor`)."""
    if paginator is None or paginator.type == "single_page":
        return None
    total = dotted(paginator.total_path) if paginator.total_path else None
    if paginator.type == "header_link":
        inner: Pagination = LinkHeader(size_param=None)
    elif paginator.type == "json_link":
        inner = JsonLink(dotted(paginator.next_url_path or "next"))
    elif paginator.type == "cursor":
        inner = CursorInBody(dotted(paginator.cursor_path or "cursors.next"), paginator.cursor_param or "cursor")
    elif paginator.type == "offset":
        if not paginator.limit or paginator.limit < 1:
            raise ConfigError(f"{where}.limit: offset paging needs the page size it asks for, e.g. limit = 100")
        inner = Offset(paginator.offset_param, paginator.limit_param, paginator.limit, count_field=total,
                       short_ends=False)  # a server may cap pages below `limit`: only an empty page (or the total) ends
    elif paginator.type == "page_number":
        inner = PageNumber(paginator.page_param, size_param=None, start=paginator.base_page, total=total)
    else:
        raise ConfigError(f"{where}.type: unknown paginator {paginator.type!r}; use header_link, json_link, cursor, "
                          "offset, page_number or single_page")
    return UntilEmpty(inner)


def credentials(config: PipelineConfig) -> Credentials | None:
    """The source's auth as the REST source signs requests; each secret named by its variable."""
    auth = config.source.auth
    if auth is None:
        return None
    where = f"{config.path}: source.auth"
    if auth.type == "bearer":
        return Auth(_named(auth.token_env, f"{where}.token_env"), required=True)
    if auth.type == "api_key":
        name, key = _named(auth.name, f"{where}.name"), _named(auth.key_env, f"{where}.key_env")
        return QueryKey(key, name) if auth.location == "query" else Auth(key, name, "{token}", required=True)
    if auth.type == "basic":
        return BasicAuth(_named(auth.username_env, f"{where}.username_env"),
                         _named(auth.password_env, f"{where}.password_env"))
    raise ConfigError(f"{where}.type: unknown auth {auth.type!r}; use bearer, api_key or basic")


def _refused(auth: AuthConfig, toml: str) -> str:
    """The message of a 401/403 (a RestSource status template), naming the variables."""
    variables, what = {"bearer": ((auth.token_env,), "a valid token"), "api_key": ((auth.key_env,), "a valid API key"),
                       "basic": ((auth.username_env, auth.password_env), "a valid user name and password")
                       }.get(auth.type, ((), "valid credentials"))
    named = _literal(" and ".join(str(v) for v in variables))
    return (f"source {{source}}: the API refused the request (HTTP {{status}}) with the {auth.type} credentials "
            f"from {named}; check that {named} hold{'' if len(variables) > 1 else 's'} {what} with access to "
            f"this resource ({toml})")


def _named(value: str | None, key: str) -> str:
    if not value:
        raise ConfigError(f"{key} is missing; name the environment variable that holds it")
    return value


def _literal(text: str) -> str:
    """`text` inside a str.format template (a RestSource path or status message)."""
    return text.replace("{", "{{").replace("}", "}}")
