"""One REST source for every JSON API, configured by data: a new API is a configuration.

`RestSource(...).fetch(ctx)` pages through each resource (a repo, an indicator, or just
the one endpoint), lands every response in the raw lake as received, and records it in
the ledger (`ops.batches`) for the load stage. An incremental cursor (the newest value of
a field in the records, e.g. `updated_at`) is kept in `ops.source_state` per source and
per resource (`<state_key>:<resource>`) and is advanced in the same warehouse transaction
that records the page that carried it: a crash after landing loses nothing (the page is
pending and loads next run) and never records one page twice. Feeds that send the newest
records first (GitHub) advance the cursor only with their last page, so a crash part-way
re-fetches rather than skips.

The next run asks from the cursor minus an overlap window, so a record stamped in the
cursor's last moment but delivered later is not missed; records sent twice are the
loader's to drop: the window rides in each page's meta (`overlap`), which the orders
loader uses with its contract's `version_key`; a pipeline without one dedupes in staging
on the record's key (e.g. a commit's sha).

Pagination strategies are small classes (`CursorInBody`, `LinkHeader`, `JsonLink`,
`PageNumber`, `Offset`, `ODataNextLink`; `UntilEmpty` ends any of them at an empty page).
Credentials (`Auth` a header token, `QueryKey` an API key in the query, `BasicAuth`) come
from the environment variables the config names and are never logged, written to the lake
(a query key is left out of each landed page's request) or put in an error. A response
that is not readable JSON with records where the config says is asked for again like any
transient fault; only one still unreadable when the retries run out is quarantined, with
the request that got it. The cursor moves on past it, so the next run asks each quarantined
request again before paging: once it reads, the item resolves and the answer lands with the
same request, pending, for the gate; while it does not, the item stays open (`partial`).

Each resource is fetched on its own: one that fails (a 404 repository, a page that stays
unreadable) does not stop the ones after it. The fetch fails once every resource was asked,
naming each failure; a resource whose only fault is a quarantined page does not fail it (its
open item makes the run `partial` and the others load in this run).

A resource whose only page has no records (an indicator without data; not an incremental
"nothing new since the cursor") is recorded in the ledger as loaded with 0 rows, and warned
about, rather than landed and forgotten.

A source that never stops paging is stopped: a next request the resource already made (a
repeated cursor or link) fails the run at once, and so do more pages or records in one run
than `PagingBounds` allow (LAKEBOX_HTTP_MAX_PAGES, LAKEBOX_HTTP_MAX_RECORDS). What landed
before stays in the lake and loads next run. Progress is logged every
`PROGRESS_EVERY_PAGES` pages or `PROGRESS_EVERY_S` seconds.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, quote, quote_plus, urljoin, urlsplit

import orjson

from lakebox import core_settings as core
from lakebox.errors import SourceFailedError
from lakebox.ingest.http import RetriesExhaustedError, RetryPolicy, UnreadableResponse, read_with_retry
from lakebox.ingest.json_pages import records_at, records_path
from lakebox.log import progress
from lakebox.settings import redact, secret_values
from lakebox.stage import StageResult
from lakebox.warehouse import ops
from lakebox.warehouse.ops import quarantine as items

if TYPE_CHECKING:
    import httpx

    from lakebox.lake import BatchManifest
    from lakebox.stage import RunContext

Params = dict[str, Any]
FieldPath = str | tuple[str, ...]
"""Where a value is in a page: a str is one field, dots and all (`@odata.count`); a tuple
is a path of fields (`("meta", "total")`, from a dotted name by `dotted`)."""
PROGRESS_EVERY_PAGES = 1000
PROGRESS_EVERY_S = 5.0


# ------------------------------------------------------------------ pages and pagination
@dataclass(frozen=True)
class Page:
    """One readable response, for a pagination strategy to find the next request in."""

    url: str
    params: Mapping[str, Any]
    response: httpx.Response
    doc: Any
    records: list[Any]


class Pagination(Protocol):
    def first(self, params: Params) -> Params:
        """The first request's parameters, from the resource's own."""

    def next(self, page: Page) -> tuple[str, Params] | None:
        """(url, params) of the request after `page`, or None when it was the last."""


@dataclass(frozen=True)
class CursorInBody:
    """The page names the next one: `{"records": [...], "next_cursor": "abc"}` -> `?cursor=abc`.
    `resend_params=False` when the cursor alone resumes (the first request's filters dropped)."""

    field: FieldPath = "next_cursor"
    param: str = "cursor"
    size_param: str | None = None
    size: int = 100
    resend_params: bool = True

    def first(self, params: Params) -> Params:
        return {**params, self.size_param: self.size} if self.size_param else dict(params)

    def next(self, page: Page) -> tuple[str, Params] | None:
        cursor = _at(page.doc, self.field)
        if not cursor or isinstance(cursor, (dict, list)):
            return None
        kept = dict(page.params) if self.resend_params else self.first({})
        return page.url, {**kept, self.param: cursor}


@dataclass(frozen=True)
class LinkHeader:
    """`Link: <...?page=2>; rel="next"` (GitHub): the next URL carries every parameter."""

    size_param: str | None = "per_page"
    size: int = 100

    def first(self, params: Params) -> Params:
        return {**params, self.size_param: self.size} if self.size_param else dict(params)

    def next(self, page: Page) -> tuple[str, Params] | None:
        link = page.response.links.get("next", {}).get("url")
        return (_same_origin(page.url, link), {}) if link else None


@dataclass(frozen=True)
class JsonLink:
    """The page holds the next page's URL (`{"next": "https://...?page=2"}`, dlt's
    json_link): followed as it is, while it is on the API's host."""

    path: FieldPath = "next"

    def first(self, params: Params) -> Params:
        return dict(params)

    def next(self, page: Page) -> tuple[str, Params] | None:
        link = _at(page.doc, self.path)
        return (_same_origin(page.url, link), {}) if isinstance(link, str) and link else None


@dataclass(frozen=True)
class PageNumber:
    """`?page=1&per_page=100`, `?page=2...` until a page comes back short (or longer than asked);
    or, with `total` (the page count's place in the page), until that many pages were asked.
    Without a `size_param` no size is sent or judged: wrap it in `UntilEmpty`."""

    param: str = "page"
    size_param: str | None = "per_page"
    size: int = 100
    start: int = 1
    total: FieldPath | None = None

    def first(self, params: Params) -> Params:
        return {**params, self.param: self.start, **({self.size_param: self.size} if self.size_param else {})}

    def next(self, page: Page) -> tuple[str, Params] | None:
        number = int(page.params[self.param]) + 1
        pages = _count(page.doc, self.total) if self.total is not None else None
        if pages is not None:
            return (page.url, {**page.params, self.param: number}) if number - self.start < pages else None
        if self.size_param and len(page.records) != self.size:
            return None  # short: the last; longer than asked: the server ignored paging
        return page.url, {**page.params, self.param: number}


@dataclass(frozen=True)
class Offset:
    """`?$top=1000&$skip=0`, then `$skip=1000`, ... until the total the page announces
    (`count_field`, e.g. `@odata.count`) is reached (a server may cap pages below `size`),
    or without a total until a page comes back short (`short_ends=False`: until one comes
    back empty, for a server that may cap pages and says no total). A page longer than
    asked means the server ignored paging and sent everything: it is the last."""

    skip_param: str = "offset"
    size_param: str = "limit"
    size: int = 1000
    count_field: FieldPath | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"$count": "true"}
    short_ends: bool = True

    def first(self, params: Params) -> Params:
        return {**params, **self.extra, self.skip_param: 0, self.size_param: self.size}

    def next(self, page: Page) -> tuple[str, Params] | None:
        got = len(page.records)
        if self.skip_param not in page.params or got == 0 or got > self.size:
            return None  # nothing more, or the server ignored the page size and sent everything
        skip = int(page.params[self.skip_param]) + got
        total = _count(page.doc, self.count_field) if self.count_field is not None else None
        if total is not None:
            return (page.url, {**page.params, self.skip_param: skip}) if skip < total else None
        return (page.url, {**page.params, self.skip_param: skip}) if got == self.size or not self.short_ends else None


@dataclass(frozen=True)
class ODataNextLink:
    """Follows `@odata.nextLink` when the page has one; otherwise `fallback` (e.g. an
    `Offset` over `$top`/`$skip`) pages, or the page was the last."""

    field: str = "@odata.nextLink"
    fallback: Pagination | None = None

    def first(self, params: Params) -> Params:
        return self.fallback.first(params) if self.fallback else dict(params)

    def next(self, page: Page) -> tuple[str, Params] | None:
        link = page.doc.get(self.field) if isinstance(page.doc, dict) else None
        if isinstance(link, str) and link:
            return _same_origin(page.url, link), {}
        return self.fallback.next(page) if self.fallback else None


@dataclass(frozen=True)
class UntilEmpty:
    """`inner`, except that a page without records is the last (dlt's rule where the API
    gives no total): a cursor, link or page number that keeps coming is not followed past
    the end of the data."""

    inner: Pagination

    def first(self, params: Params) -> Params:
        return self.inner.first(params)

    def next(self, page: Page) -> tuple[str, Params] | None:
        return self.inner.next(page) if page.records else None


def dotted(path: str) -> tuple[str, ...]:
    """A dotted name (`meta.total`, `cursors.next`) as the path of fields it names."""
    return tuple(path.split("."))


def _at(doc: Any, path: FieldPath) -> Any:
    return _dig(doc, (path,) if isinstance(path, str) else path)


def _count(doc: Any, path: FieldPath) -> int | None:
    """A whole number at `path` (a total, a page count; digits in a string too), else None:
    paging then ends by the page's size or an empty page, never by a guess."""
    value = _at(doc, path)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _same_origin(current: str, link: str) -> str:
    """A next link, made absolute; refused when it leaves the API's host (the client would
    send the token there)."""
    target = urljoin(current, link)
    if urlsplit(target)[:2] != urlsplit(current)[:2]:
        raise SourceFailedError(f"the API's next link points to another host ({redact(target)}); "
                                "refusing to follow it with the source's credentials")
    return target


# ------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class PagingBounds:
    """The most pages and records one run of a source may fetch (over all its resources):
    an API that keeps sending a next page is stopped, not followed forever. The defaults
    are far above any bundled pipeline's run (10M orders are 1,000 pages)."""

    max_pages: int = 100_000
    max_records: int = 100_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PagingBounds:
        """LAKEBOX_HTTP_MAX_PAGES, LAKEBOX_HTTP_MAX_RECORDS (lakebox.core_settings: defaults, ranges)."""
        return cls(max_pages=core.HTTP_MAX_PAGES.read(env), max_records=core.HTTP_MAX_RECORDS.read(env))


@dataclass(frozen=True)
class Resource:
    """One thing fetched with its own cursor: `key` names it in ops.source_state and in
    each page's meta; `path_vars` fill the path template; `params` are its own filters."""

    key: str = ""
    path_vars: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Incremental:
    """Ask only for what changed since the newest `field` (dotted path into a record, e.g.
    `commit.committer.date`) seen, minus `overlap`, as query parameter `param`. `start`
    is sent when a resource has no cursor yet. ISO-8601 times are compared as times."""

    field: str
    param: str
    overlap: dt.timedelta | None = dt.timedelta(seconds=1)
    state_key: str = "cursor"
    start: str | None = None
    newest_first: bool = False


@dataclass(frozen=True)
class Signed:
    """What a source's credentials add to every request, and the values to hide wherever
    text is shown or kept (each as sent and as a URL spells it)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


class MissingCredentialError(SourceFailedError):
    """A credential the source requires is not in the environment: nothing was asked."""


def _required(env: Mapping[str, str], variable: str, source: str, what: str) -> str:
    value = env.get(variable, "")
    if not value:
        raise MissingCredentialError(
            f"source {source}: {what} comes from the environment variable {variable}, which is not set; "
            f"set {variable} (in the environment, never in a config file) and run again")
    return value


def _spellings(*secrets: str) -> tuple[str, ...]:
    """Each secret as sent and as a URL's query spells it (a key with `/`, `+` or `=`)."""
    return tuple(sorted({form for s in secrets if s for form in (s, quote(s, safe=""), quote_plus(s))},
                        key=len, reverse=True))


@dataclass(frozen=True)
class Auth:
    """A token from the environment variable `env`, sent as `header: template` (a bearer
    token, or an API key header with template "{token}"); no header when the variable is
    unset or empty, unless `required` (then nothing is asked and the error names `env`)."""

    env: str
    header: str = "Authorization"
    template: str = "Bearer {token}"
    required: bool = False

    def sign(self, env: Mapping[str, str], source: str) -> Signed:
        token = (_required(env, self.env, source, f"the {self.header} credential") if self.required
                 else env.get(self.env, ""))
        if not token:
            return Signed()
        return Signed(headers={self.header: self.template.format(token=token)}, secrets=_spellings(token))


@dataclass(frozen=True)
class QueryKey:
    """An API key from the environment variable `env`, sent as query parameter `name` on
    every request. It is added as each request goes out, so it is never in a landed page's
    request, a log line or an error (a next link that echoes it has it hidden)."""

    env: str
    name: str

    def sign(self, env: Mapping[str, str], source: str) -> Signed:
        key = _required(env, self.env, source, f"the API key (query parameter {self.name!r})")
        return Signed(params={self.name: key}, secrets=_spellings(key))


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic authentication from two environment variables."""

    username_env: str
    password_env: str

    def sign(self, env: Mapping[str, str], source: str) -> Signed:
        import base64

        user = _required(env, self.username_env, source, "the basic-auth user name")
        password = _required(env, self.password_env, source, "the basic-auth password")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return Signed(headers={"Authorization": f"Basic {token}"}, secrets=_spellings(password, token))


Credentials = Auth | QueryKey | BasicAuth


BaseUrl = str | Callable[["RunContext"], AbstractContextManager[str]]


def base_url_from_env(env: str, default: str | None = None) -> Callable[[RunContext], AbstractContextManager[str]]:
    """The base URL from the environment variable `env` (else `default`)."""

    @contextmanager
    def resolve(ctx: RunContext) -> Iterator[str]:
        url = ctx.settings.env.get(env) or default
        if not url:
            from lakebox.errors import ConfigError

            raise ConfigError(f"{env} is not set; set it to the API's base URL")
        yield url

    return resolve


@dataclass(frozen=True)
class RestSource:
    """A JSON API as data. `path` is a template filled from each resource's `path_vars`;
    `records` is where a page's records are (`$.records`, `$.value`, or `$` for a bare
    array); `statuses` maps an HTTP status to the message of a terminal error (formatted
    with source, resource, status, url); `empty_statuses` mean "nothing here" (GitHub's
    409 for an empty repository). `from_start` asks every resource from the incremental
    `start` rather than its cursor, and then sets the cursor to the newest record seen;
    `listed` is called with every page a resource sent (its whole listing) once it was
    fetched to its last page, e.g. to mark what the source no longer lists."""

    source: str
    base_url: BaseUrl
    path: str
    records: str = "$"
    pagination: Pagination | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    resources: Sequence[Resource] = (Resource(),)
    incremental: Incremental | None = None
    auth: Credentials | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    statuses: Mapping[int, str] = field(default_factory=dict)
    empty_statuses: frozenset[int] = frozenset()
    unreadable_hint: str = ("the API sent a response that is not a readable page; it was retried. Inspect the "
                            "item, and if the source recovers nothing is lost")
    sleep: Callable[[float], None] | None = None  # tests inject one to record waits
    from_start: bool = False  # ask each resource from `incremental.start`, not its cursor (a full refresh)
    listed: Callable[[RunContext, Resource, Sequence[BatchManifest]], None] | None = None

    def __post_init__(self) -> None:
        records_path(self.records)  # a bad records path fails when the source is declared

    def state_key(self, resource: Resource) -> str:
        """Where `resource`'s cursor lives in ops.source_state (under `source`)."""
        base = self.incremental.state_key if self.incremental else "cursor"
        return f"{base}:{resource.key}" if resource.key else base

    def fetch(self, ctx: RunContext) -> StageResult:
        """Land every new page of every resource; rows counted are the records landed."""
        import httpx

        env = ctx.settings.env
        signed = self.auth.sign(env, self.source) if self.auth else Signed()
        headers = {**self.headers, **signed.headers}
        run = _Fetch(self, ctx, RetryPolicy.from_env(env), PagingBounds.from_env(env), signed)
        failures: list[tuple[str, SourceFailedError]] = []
        with _resolve(self.base_url, ctx) as base, httpx.Client(headers=headers) as client, \
                progress(f"fetching {self.source}") as bar:
            run.base = base.rstrip("/")
            for resource in self.resources:
                try:
                    run.ask_quarantined_again(client, resource)
                    run.resource(client, resource, bar)
                except SourceFailedError as exc:
                    exc.args = (run.hide(str(exc)),)  # e.g. a foreign next link that echoes a query key
                    if isinstance(exc, PagingStoppedError):
                        raise  # a runaway source: its other resources are not asked either
                    failures.append((resource.key or self.source, exc))  # the others are still fetched
                    ctx.log.error(f"{self.source}: a resource failed; the others are still fetched",
                                  resource=resource.key or None, error=str(exc))
        ctx.log.info(f"{self.source} fetched", pages=run.pages, records=run.rows)
        raise_for_failures(self.source, failures, len(self.resources))
        return StageResult(rows_in=run.rows, rows_out=run.rows)


def raise_for_failures(source: str, failures: Sequence[tuple[str, SourceFailedError]], resources: int) -> None:
    """Fail a fetch for what failed (each failure named by its resource), once every
    resource was asked. A resource whose only fault was a quarantined page does not fail it
    (its open item makes the run `partial` and the other resources load in this run),
    unless no resource was fetched at all."""
    if not failures:
        return
    if len(failures) < resources and all(isinstance(exc, UnreadableQuarantinedError) for _, exc in failures):
        return
    if len(failures) == 1 and resources == 1:
        raise failures[0][1]
    fetched = resources - len(failures)
    names = "; ".join(f"{name}: {exc}" for name, exc in failures)
    raise SourceFailedError(
        f"source {source}: {len(failures)} of {resources} resources failed ({names}); the other {fetched} were "
        "fetched and what they landed is recorded and loads with the next run; fix or remove the failing ones")


@contextmanager
def _resolve(base_url: BaseUrl, ctx: RunContext) -> Iterator[str]:
    if isinstance(base_url, str):
        yield base_url
    else:
        with base_url(ctx) as url:
            yield url


# ------------------------------------------------------------------ one run of a source
class _Fetch:
    """The state of one fetch: counts, the policy and bounds, the secrets to hide."""

    def __init__(self, config: RestSource, ctx: RunContext, policy: RetryPolicy, bounds: PagingBounds,
                 signed: Signed) -> None:
        self.config, self.ctx, self.policy, self.bounds = config, ctx, policy, bounds
        self.secrets, self.sign = signed.secrets, signed.params
        self.pages = self.rows = 0
        self.base = ""  # the API's base URL, once resolved
        self.logged_at, self.logged_pages = time.monotonic(), 0
        # the environment's secrets, found once per fetch rather than per page and parameter
        self._hidden = sorted({*signed.secrets, *secret_values()}, key=len, reverse=True)

    def hide(self, text: str) -> str:
        text = redact(text, {})  # passwords in URLs; the secrets found at the start follow
        for secret in self._hidden:
            text = text.replace(secret, "***")
        return text

    def ask_quarantined_again(self, client: httpx.Client, resource: Resource) -> None:
        """Ask once more for each request of `resource` whose response the fetch quarantined as
        unreadable: the cursor has moved past it, so paging never asks it again. An answer
        that now reads resolves the item and lands, pending, with the same request (meta),
        for the gate to load or quarantine like any page; one still unreadable keeps the
        item open (logged, not a failure: the run ends `partial`)."""
        config, ctx, wh = self.config, self.ctx, self.ctx.warehouse
        waiting = items.items(wh, source=config.source)
        if not waiting:
            return
        metas = ops.ledger.batch_meta(wh, [i.batch_id for i in waiting])
        first_url = self.base + config.path.format(**{k: quote(v, safe="") for k, v in resource.path_vars.items()})
        passthrough = {*config.statuses, *config.empty_statuses}
        for item in waiting:
            meta = metas.get(item.batch_id, {})
            if not meta.get(UNREADABLE) or meta.get("request") is None or meta.get("resource", "") != resource.key:
                continue  # only what the fetch itself quarantined: a page the gate refused was read
            url = self.base + meta["path"] if "path" in meta else first_url
            params = dict(meta["request"])
            try:
                response, page = read_with_retry(client, url, params, config.source, self.policy,
                                                 self.read_page(passthrough), sleep=config.sleep or _sleep,
                                                 passthrough=passthrough, secrets=self.secrets, sign=self.sign)
            except SourceFailedError as exc:
                ctx.log.warning(f"{config.source}: a quarantined request is still unreadable; its item stays open",
                                quarantine_id=item.id, url=self.hide(url), error=self.hide(str(exc)))
                continue
            if page is None:  # a status the config names (gone, empty): nothing to resolve it with
                ctx.log.warning(f"{config.source}: a quarantined request now answers HTTP {response.status_code}; "
                                "its item stays open", quarantine_id=item.id, url=self.hide(url))
                continue
            kept = {k: v for k, v in meta.items() if k != UNREADABLE}
            manifest = self.ctx.lake.land_batch(config.source, response.content, "json",
                                                meta={**kept, "asked_again_for": item.id})
            with wh.transaction():  # the answer is pending for the gate, and the unreadable item is settled
                added = ops.record_landed(wh, replace(manifest, rows=len(page[1])), ctx.run_id)
                items.resolve(wh, [item.id], by_batch=manifest.batch_id, run_id=ctx.run_id)
            ctx.log.info(f"{config.source}: a quarantined request was asked again and now reads",
                         quarantine_id=item.id, batch_id=manifest.batch_id, records=len(page[1]), new=added)

    def resource(self, client: httpx.Client, resource: Resource, bar: Any) -> None:
        config, ctx, wh, base = self.config, self.ctx, self.ctx.warehouse, self.base
        source, inc = config.source, config.incremental
        state_key = config.state_key(resource)
        stored = ops.get_state(wh, source, state_key) if inc else None
        resume = None if config.from_start else stored
        params: Params = {**config.params, **resource.params}
        meta: dict[str, Any] = {"resource": resource.key} if resource.key else {}
        if inc and resume:
            since = _minus(resume, inc.overlap)
            params[inc.param] = since
            if inc.overlap:
                meta["overlap"] = [since, resume]
        elif inc and inc.start:
            params[inc.param] = inc.start
        url = base + config.path.format(**{k: quote(v, safe="") for k, v in resource.path_vars.items()})
        params = config.pagination.first(params) if config.pagination else params
        ctx.log.info(f"fetching {source}", url=self.hide(url), resource=resource.key or None,
                     **({inc.param: params.get(inc.param)} if inc else {}))
        newest = resume
        listing: list[BatchManifest] = []
        passthrough = {*config.statuses, *config.empty_statuses}
        asked: set[str] = {_request_key(url, params)}
        group = _LandedPages(ctx, source, state_key, stored)
        first = True
        try:
            while True:
                response, page = self.get_page(client, url, params, passthrough, meta)
                if response.status_code in config.empty_statuses:
                    ctx.log.info(f"{source}: nothing to fetch", resource=resource.key or None,
                                 status=response.status_code)
                    break
                if response.status_code in config.statuses:
                    raise SourceFailedError(self.hide(config.statuses[response.status_code].format(
                        source=source, resource=resource.key, status=response.status_code, url=url)))
                assert page is not None  # a status the config does not name was read as a page
                doc, records = page
                manifest = self.land(response.content, url, params, meta, durable=False)
                self.pages, self.rows = self.pages + 1, self.rows + len(records)
                bar.advance(len(records))
                following = (config.pagination.next(Page(url, params, response, doc, records))
                             if config.pagination else None)
                if inc:
                    newest = _later(newest, _newest(records, inc.field))
                if records or following:
                    group.add(replace(manifest, rows=len(records)))
                    listing.append(manifest)
                elif first and not (inc and resume):  # not "nothing new since the cursor": nothing at all
                    group.add_empty(replace(manifest, rows=0))
                    ctx.log.warning(f"{source}: the API sent no records", resource=resource.key or None,
                                    url=self.hide(url), batch_id=manifest.batch_id)
                first = False
                if inc is not None and (following is None or not inc.newest_first):
                    group.cursor = newest
                self.note_progress(resource)
                if following is None:
                    break
                if len(group.manifests) >= PAGES_PER_COMMIT:
                    group.flush()
                url, params = following
                self.check_bounds(resource, url, params, asked)
                asked.add(_request_key(url, params))
        finally:
            group.flush()  # what landed is recorded, even when the fetch stops part-way
        if config.listed is not None:
            config.listed(ctx, resource, listing)
        stored = group.stored
        ctx.log.info(f"{source} resource fetched", resource=resource.key or None,
                     **({"cursor": stored} if inc else {}))


    def get_page(self, client: httpx.Client, url: str, params: Params, passthrough: set[int],
                 meta: Mapping[str, Any]) -> tuple[httpx.Response, tuple[Any, list[Any]] | None]:
        """The response and its (doc, records); an unreadable one is asked for again, and
        only what is still unreadable when the retries run out is quarantined."""
        config = self.config
        try:
            return read_with_retry(client, url, params, config.source, self.policy, self.read_page(passthrough),
                                   sleep=config.sleep or _sleep, passthrough=passthrough, secrets=self.secrets,
                                   sign=self.sign)
        except RetriesExhaustedError as exc:
            if not exc.unreadable:
                raise
            asked = {"url": self.hide(url), "params": {k: self.hide(v) if isinstance(v, str) else v
                                                       for k, v in params.items() if k not in self.sign}}
            for body, reason in exc.unreadable.items():
                landed = self.land(body, url, params, {**meta, UNREADABLE: True})
                quarantine_unreadable(self.ctx, config.source, landed,
                                      f"{reason} (still unreadable when {exc.bound} stopped the retries)",
                                      config.unreadable_hint, asked)
            raise UnreadableQuarantinedError(f"{exc}; the {len(exc.unreadable)} unreadable responses are "
                                             f"quarantined in the lake ({config.unreadable_hint})") from exc

    def read_page(self, passthrough: set[int]) -> Callable[[httpx.Response], tuple[Any, list[Any]] | None]:
        path, source = records_path(self.config.records), self.config.source

        def read(response: httpx.Response) -> tuple[Any, list[Any]] | None:
            if response.status_code in passthrough:
                return None
            try:
                doc = orjson.loads(response.content)
                return doc, records_at(doc, path)
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise UnreadableResponse(f"response is not a valid {source} page: {exc}", response.content) from exc

        return read

    def land(self, body: bytes, url: str, params: Params, meta: Mapping[str, Any],
             durable: bool = True) -> BatchManifest:
        """`body` in the raw lake, with the request that got it (secrets hidden) in its meta;
        `durable=False` leaves the fsync to the next `_LandedPages.flush`. A query key is left
        out: it is added to each request as it goes out (a page asked again gets it then)."""
        request = {k: v for k, v in (dict(parse_qsl(urlsplit(url).query)) | params).items() if k not in self.sign}
        where = urlsplit(url)._replace(query="", fragment="").geturl()
        path = {"path": where[len(self.base):]} if where.startswith(self.base) else {}  # the base may move
        return self.ctx.lake.land_batch(self.config.source, body, "json", durable=durable, meta={
            **meta, **path, "request": {k: self.hide(v) if isinstance(v, str) else v for k, v in request.items()}})

    def check_bounds(self, resource: Resource, url: str, params: Params, asked: set[str]) -> None:
        """Refuse a next request already made for this resource, or one past the run's bounds."""
        source, bounds = self.config.source, self.bounds
        where = f"source {self.config.source}" + (f" ({resource.key})" if resource.key else "")
        kept = (f"the {self.pages} pages ({self.rows} records) landed so far are kept in the lake and load "
                "with the next run")
        if _request_key(url, params) in asked:
            raise PagingStoppedError(
                f"{where}: the API's next page is one it already sent ({self.hide(url)} {self.hide(str(params))}), "
                f"so paging would never end; stopped after {self.pages} pages; {kept}; check the {source} API's "
                "paging (a repeated cursor or link)")
        for count, bound, name, what in ((self.pages, bounds.max_pages, "LAKEBOX_HTTP_MAX_PAGES", "pages"),
                                         (self.rows, bounds.max_records, "LAKEBOX_HTTP_MAX_RECORDS", "records")):
            if count >= bound:
                raise PagingStoppedError(
                    f"{where}: stopped at the bound of {bound} {what} per run ({name}) with the API still "
                    f"sending a next page; {kept}. If the source really has more, raise {name}; "
                    "else check its paging")

    def note_progress(self, resource: Resource) -> None:
        """A log line every PROGRESS_EVERY_PAGES pages or PROGRESS_EVERY_S seconds."""
        now = time.monotonic()
        if self.pages - self.logged_pages >= PROGRESS_EVERY_PAGES or now - self.logged_at >= PROGRESS_EVERY_S:
            self.ctx.log.info(f"fetching {self.config.source}: progress", resource=resource.key or None,
                              pages=self.pages, records=self.rows)
            self.logged_at, self.logged_pages = now, self.pages


def _request_key(url: str, params: Mapping[str, Any]) -> str:
    return url + "?" + repr(sorted((str(k), str(v)) for k, v in params.items()))


UNREADABLE = "unreadable"  # meta of a response the fetch quarantined: its request is asked again next run
PAGES_PER_COMMIT = 32  # pages landed, fsynced together and recorded in one ledger transaction


class _LandedPages:
    """Pages landed but not yet in the ledger, with the cursor they carry. A flush makes
    their objects durable (one concurrent fsync pass) and records them and the cursor in one
    transaction, instead of a pair of fsyncs and a transaction per page; a crash before it
    leaves objects the ledger does not know, which the next fetch asks for again."""

    def __init__(self, ctx: RunContext, source: str, state_key: str, stored: str | None) -> None:
        self.ctx, self.source, self.state_key = ctx, source, state_key
        self.manifests: list[BatchManifest] = []
        self.empty: list[BatchManifest] = []
        self.stored = self.cursor = stored

    def add(self, manifest: BatchManifest) -> None:
        self.manifests.append(manifest)

    def add_empty(self, manifest: BatchManifest) -> None:
        """A resource's only page, without records: recorded as loaded with 0 rows (there is
        nothing to check or load), so the ledger shows what the API answered."""
        self.empty.append(manifest)

    def flush(self) -> None:
        ctx, wh = self.ctx, self.ctx.warehouse
        ctx.lake.sync()
        advance = self.cursor is not None and self.cursor != self.stored
        if not self.manifests and not self.empty and not advance:
            return
        with wh.transaction():  # the pages and the cursor they carry commit together
            if self.manifests:
                ops.record_landed_many(wh, self.manifests, ctx.run_id)
            if self.empty:
                known = ops.ledger.batch_meta(wh, [m.batch_id for m in self.empty])
                ops.record_landed_many(wh, self.empty, ctx.run_id)
                ops.mark_loaded(wh, {m.batch_id: 0 for m in self.empty if m.batch_id not in known})
            if advance and self.cursor is not None:
                ops.set_state(wh, self.source, self.state_key, self.cursor)
        self.manifests, self.empty, self.stored = [], [], self.cursor if advance else self.stored


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _dig(record: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(record, dict):
            return None
        record = record.get(part)
    return record


def _newest(records: list[Any], field_path: str) -> str | None:
    """The page's newest value: a feed writes its times in one format, so the text order is
    the time order (values are parsed only to compare with the stored cursor). A numeric
    cursor (an id, a version) is compared as a number and kept as its text."""
    path = field_path.split(".")
    if len(path) == 1:  # the common case, without a call per record
        values = [r.get(field_path) for r in records if isinstance(r, dict)]
    else:
        values = [_dig(r, path) for r in records]
    stamps = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return _later(max(stamps) if stamps else None, str(max(numbers)) if numbers else None)


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _sortable(value: str) -> Any:
    if _NUMBER.fullmatch(value):  # before ISO: 20240101 is a number here, not a date
        return (0, float(value))
    try:
        return (1, dt.datetime.fromisoformat(value).astimezone(dt.UTC))
    except ValueError:
        return (2, value)


def _later(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return b if _sortable(b) > _sortable(a) else a


def _minus(cursor: str, overlap: dt.timedelta | None) -> str:
    if overlap is None or _NUMBER.fullmatch(cursor):
        return cursor
    moment = dt.datetime.fromisoformat(cursor) - overlap
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class PagingStoppedError(SourceFailedError):
    """The source would page forever (a repeated request, or past the run's bounds): the
    whole fetch stops, not just the resource."""


class UnreadableQuarantinedError(SourceFailedError):
    """A resource stopped at a page that stayed unreadable and was quarantined."""


def quarantine_unreadable(ctx: RunContext, source: str, manifest: BatchManifest, reason: str, hint: str,
                          asked: Mapping[str, Any] | None = None) -> None:
    """Keep a response that stayed unreadable through the retries in quarantine, with why
    and the request that got it (`asked`: url and params, the errors.json's sample), and note
    it on the run; the next run asks that request again, and the item resolves once it loads
    (the one place that quarantines what a REST source sent)."""
    from lakebox.quality import gate

    result = gate.CheckResult("parse", None, False, 0, [dict(asked)] if asked else [], reason)
    wh = ctx.warehouse
    with wh.transaction():
        if not ops.record_landed(wh, manifest, ctx.run_id):
            return  # the same bytes were judged before
        gate.quarantine_unreadable(ctx, source=source, batch_id=manifest.batch_id, lake_key=manifest.key,
                                   result=result, hint=hint)
    ctx.log.error("unreadable response quarantined", batch_id=manifest.batch_id, reason=reason)
