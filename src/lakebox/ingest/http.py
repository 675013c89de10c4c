"""GET with bounded retries: exponential backoff that honours Retry-After.

Transient faults (429, 5xx, timeouts, dropped connections) are retried until the attempt
or time budget runs out; anything else fails at once. Either way the error names the
source and the URL (secrets redacted) and what happened last.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.errors import SourceFailedError, TransientSourceError
from lakebox.log import get_logger
from lakebox.settings import redact

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_elapsed_s: float = 120.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """LAKEBOX_HTTP_MAX_ATTEMPTS, _MAX_ELAPSED, _BACKOFF, _MAX_DELAY, _TIMEOUT override."""
        default = cls()
        return cls(
            max_attempts=int(env.get("LAKEBOX_HTTP_MAX_ATTEMPTS", default.max_attempts)),
            max_elapsed_s=float(env.get("LAKEBOX_HTTP_MAX_ELAPSED", default.max_elapsed_s)),
            base_delay_s=float(env.get("LAKEBOX_HTTP_BACKOFF", default.base_delay_s)),
            max_delay_s=float(env.get("LAKEBOX_HTTP_MAX_DELAY", default.max_delay_s)),
            timeout_s=float(env.get("LAKEBOX_HTTP_TIMEOUT", default.timeout_s)),
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = self.base_delay_s * (2 ** (attempt - 1))
        wanted = max(backoff, retry_after) if retry_after is not None else backoff
        return min(wanted, self.max_delay_s)


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


def get_with_retry(
    client: httpx.Client,
    url: str,
    params: Mapping[str, Any],
    source: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    import httpx

    log = get_logger()
    started = time.monotonic()
    last = ""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            response = client.get(url, params=params, timeout=policy.timeout_s)
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientSourceError(
                    f"HTTP {response.status_code}", parse_retry_after(response.headers.get("Retry-After"))
                )
            if response.status_code >= 400:
                raise SourceFailedError(
                    f"source {source}: {redact(url)} answered HTTP {response.status_code}: "
                    f"{redact(response.text[:300])}; check the request and the source's credentials"
                )
            return response
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            error: TransientSourceError = TransientSourceError(f"{type(exc).__name__}: {exc}")
        except TransientSourceError as exc:
            error = exc
        last = str(error)
        elapsed = time.monotonic() - started
        delay = policy.delay(attempt, error.retry_after)
        if attempt == policy.max_attempts or elapsed + delay > policy.max_elapsed_s:
            break
        log.warning("transient source fault, retrying", source=source, attempt=attempt,
                    error=last, wait_s=round(delay, 3))
        sleep(delay)
    raise SourceFailedError(
        f"source {source}: {redact(url)} still failing after {attempt} attempts in "
        f"{time.monotonic() - started:.1f}s (last: {redact(last)}); the source may be down or "
        "rate-limiting: try again later or raise LAKEBOX_HTTP_MAX_ATTEMPTS"
    )
