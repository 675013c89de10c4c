"""GET with bounded retries: exponential backoff that honours Retry-After and rate limits.

Transient faults (429, 5xx, timeouts, dropped connections, a 403 with Retry-After) are
retried until the attempt or time budget runs out; anything else fails at once. What to
retry is read from the errors' `Transient`/`Terminal` markers, not their classes. The time
budget is a deadline: each attempt's timeout is clipped to what is left of it. A 403 or
429 with `X-RateLimit-Remaining: 0` waits until `X-RateLimit-Reset` when that is within
`max_rate_limit_wait_s` (a wait outside the time budget), else fails at once saying when to
try again. A response the caller cannot read (`UnreadableResponse`) is asked for again
like any transient fault, so one that a retry cures is a retry. Either way the error names
the source and the URL (secrets redacted), which bound stopped the retries, and what
happened last.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lakebox import core_settings as core
from lakebox.errors import (
    LakeboxError,
    SourceFailedError,
    Transient,
    TransientSourceError,
)
from lakebox.log import get_logger
from lakebox.settings import redact

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_elapsed_s: float = 120.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 30.0
    max_rate_limit_wait_s: float = 900.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """LAKEBOX_HTTP_MAX_ATTEMPTS, _MAX_ELAPSED, _BACKOFF, _MAX_DELAY, _TIMEOUT,
        _MAX_RATE_LIMIT_WAIT (lakebox.core_settings: defaults, ranges); a bad one is a ConfigError."""
        return cls(
            max_attempts=core.HTTP_MAX_ATTEMPTS.read(env),
            max_elapsed_s=core.HTTP_MAX_ELAPSED.read(env),
            base_delay_s=core.HTTP_BACKOFF.read(env),
            max_delay_s=core.HTTP_MAX_DELAY.read(env),
            timeout_s=core.HTTP_TIMEOUT.read(env),
            max_rate_limit_wait_s=core.HTTP_MAX_RATE_LIMIT_WAIT.read(env),
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The backoff, capped at max_delay_s; a longer Retry-After is the server's word and
        is honoured in full (the elapsed budget still bounds it)."""
        backoff = min(self.base_delay_s * 2.0 ** (attempt - 1), self.max_delay_s)
        return max(backoff, retry_after) if retry_after is not None else backoff


class RateLimitedError(TransientSourceError):
    """The source's rate limit is used up until a known time: wait for it (not a backoff)."""


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class UnreadableResponse(TransientSourceError):
    """A response that is not what the caller can read (not JSON, no records): asked for
    again; `body` is kept so that one which never comes right can be quarantined."""

    def __init__(self, message: str, body: bytes) -> None:
        super().__init__(message)
        self.body = body


class RetriesExhaustedError(SourceFailedError):
    """A transient fault outlasted the retry policy: `bound` names the setting that stopped
    the retries; `unreadable` maps each distinct unreadable body met on the way to why."""

    def __init__(self, message: str, bound: str, unreadable: Mapping[bytes, str] | None = None) -> None:
        super().__init__(message)
        self.bound, self.unreadable = bound, dict(unreadable or {})


def get_with_retry(
    client: httpx.Client,
    url: str,
    params: Mapping[str, Any],
    source: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    passthrough: Collection[int] = (),
    secrets: Sequence[str] = (),
    clock: Callable[[], float] = time.time,
) -> httpx.Response:
    """The response to a GET, retried as the policy says. Statuses in `passthrough` are
    returned for the caller to judge (e.g. 409 "empty"); `secrets` are hidden in every
    message besides what `redact` hides; `clock` is epoch seconds (rate-limit resets)."""
    return read_with_retry(client, url, params, source, policy, _as_is, sleep, passthrough, secrets, clock)[0]


def _as_is(response: httpx.Response) -> None:
    return None


def read_with_retry(
    client: httpx.Client,
    url: str,
    params: Mapping[str, Any],
    source: str,
    policy: RetryPolicy,
    read: Callable[[httpx.Response], T],
    sleep: Callable[[float], None] = time.sleep,
    passthrough: Collection[int] = (),
    secrets: Sequence[str] = (),
    clock: Callable[[], float] = time.time,
    sign: Mapping[str, str] | None = None,
) -> tuple[httpx.Response, T]:
    """`get_with_retry`, and what `read` makes of the response; `read` raising
    `UnreadableResponse` counts as one more transient fault. `sign` are query parameters
    added to the request as it goes out (an API key): kept out of `url` and `params`, so
    nothing the caller shows or keeps holds them."""
    import httpx

    if sign and params:
        target, params = httpx.URL(url), {**params, **sign}
    elif sign:  # a next link carries its own query: the key joins it
        target, params = httpx.URL(url).copy_merge_params(sign), {}
    else:
        target = httpx.URL(url)

    def hide(text: str) -> str:
        text = redact(text)
        for secret in secrets:
            text = text.replace(secret, "***") if secret else text
        return text

    log = get_logger()
    started = time.monotonic()
    waited_for_reset = 0.0
    last, bound = "", "LAKEBOX_HTTP_MAX_ATTEMPTS"
    unreadable: dict[bytes, str] = {}
    for attempt in range(1, policy.max_attempts + 1):
        remaining = policy.max_elapsed_s - (time.monotonic() - started - waited_for_reset)
        try:
            # params=None, not {}: httpx drops the query a URL carries when given empty params
            response = client.get(target, params=params or None,
                                  timeout=max(0.001, min(policy.timeout_s, remaining)))
            if response.status_code >= 400:  # below it nothing to judge, so no URL to redact (a scan of the environment)
                _judge(response, source, hide(url), policy, passthrough, clock, hide)
            return response, read(response)
        except httpx.TransportError as exc:  # timeouts, refused and dropped connections
            error: LakeboxError = TransientSourceError(f"{type(exc).__name__}: {exc}")
        except LakeboxError as exc:
            if not isinstance(exc, Transient):
                raise
            error = exc
        last = str(error)
        if isinstance(error, UnreadableResponse):
            unreadable[error.body] = hide(last)
        elapsed = time.monotonic() - started - waited_for_reset
        retry_after = getattr(error, "retry_after", None)
        if isinstance(error, RateLimitedError) and retry_after is not None:
            delay = retry_after
            waited_for_reset += delay
        else:
            delay = policy.delay(attempt, retry_after)
            if elapsed + delay >= policy.max_elapsed_s:
                bound = "LAKEBOX_HTTP_MAX_ELAPSED"
                break
        if attempt == policy.max_attempts:
            break
        log.warning("transient source fault, retrying", source=source, attempt=attempt,
                    error=hide(last), wait_s=round(delay, 3))
        from lakebox.observability import note_http_retry

        note_http_retry(source, delay, rate_limited=retry_after is not None)
        sleep(delay)
    limit = (f"{bound}={policy.max_attempts} attempts" if bound == "LAKEBOX_HTTP_MAX_ATTEMPTS"
             else f"{bound}={policy.max_elapsed_s:g} s")
    advice = ("the source keeps sending unreadable responses: inspect them" if unreadable
              else "the source may be down or rate-limiting: try again later")
    raise RetriesExhaustedError(
        f"source {source}: {hide(url)} still failing after {attempt} attempts in "
        f"{time.monotonic() - started:.1f}s, retries stopped by {limit} (last: {hide(last)}); "
        f"{advice}, or raise {bound}",
        bound, unreadable,
    )


def _judge(
    response: httpx.Response,
    source: str,
    shown_url: str,
    policy: RetryPolicy,
    passthrough: Collection[int],
    clock: Callable[[], float],
    hide: Callable[[str], str],
) -> None:
    """Raise what a response means: nothing for success or a passed-through status."""
    status, headers = response.status_code, response.headers
    if status in (403, 429) and headers.get("X-RateLimit-Remaining") == "0" and headers.get("X-RateLimit-Reset"):
        reset = float(headers["X-RateLimit-Reset"])
        wait = max(0.0, reset - clock()) + 1.0  # a second past the reset, against clock skew
        when = dt.datetime.fromtimestamp(reset, dt.UTC).isoformat().replace("+00:00", "Z")
        if wait > policy.max_rate_limit_wait_s:
            raise SourceFailedError(
                f"source {source}: {shown_url} answered HTTP {status}: rate limit used up until {when} "
                f"(in {wait:.0f} s, longer than the {policy.max_rate_limit_wait_s:.0f} s this run may wait); "
                f"try again after {when}, or raise LAKEBOX_HTTP_MAX_RATE_LIMIT_WAIT"
            )
        raise RateLimitedError(f"HTTP {status}: rate limit used up until {when}", wait)
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status == 429 or status >= 500 or (status == 403 and retry_after is not None):
        raise TransientSourceError(f"HTTP {status}", retry_after)
    if status in passthrough or status < 400:
        return
    raise SourceFailedError(
        f"source {source}: {shown_url} answered HTTP {status}: "
        f"{hide(response.text[:300])}; check the request and the source's credentials"
    )
