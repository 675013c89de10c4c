"""Retries against a real HTTP server on loopback that answers from a script."""

import time
from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest

from lakebox.errors import ConfigError, SourceFailedError
from lakebox.ingest.http import (
    RetriesExhaustedError,
    RetryPolicy,
    UnreadableResponse,
    get_with_retry,
    parse_retry_after,
    read_with_retry,
)
from tests.conftest import QuietHandler, serve_on_loopback


class Scripted(QuietHandler):
    script: ClassVar[list[tuple[int, dict[str, str]]]] = []
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Scripted.seen.append(self.path)
        status, headers = Scripted.script.pop(0) if Scripted.script else (200, {})
        self.send_json(status, b'{"ok": true}', headers)


@pytest.fixture
def server() -> Iterator[str]:
    Scripted.seen = []
    with serve_on_loopback(Scripted) as url:
        yield f"{url}/v1/x"


def test_retries_transient_then_recovers_honouring_retry_after(server: str) -> None:
    Scripted.script = [(429, {"Retry-After": "3"}), (500, {}), (503, {})]
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.1, max_delay_s=10)
    with httpx.Client() as client:
        response = get_with_retry(client, server, {"a": 1}, "src", policy, sleep=waits.append)
    assert response.status_code == 200
    assert len(Scripted.seen) == 4
    assert waits == [3.0, 0.2, 0.4]  # Retry-After wins over a shorter backoff, then exponential


def test_persistent_fault_fails_clearly_after_bounded_attempts(server: str) -> None:
    Scripted.script = [(500, {})] * 10
    with httpx.Client() as client, pytest.raises(SourceFailedError) as err:
        get_with_retry(client, server, {}, "orders", RetryPolicy(max_attempts=3, base_delay_s=0.01), sleep=lambda s: None)
    assert len(Scripted.seen) == 3
    message = str(err.value)
    assert "orders" in message and "3 attempts" in message and "HTTP 500" in message
    assert "stopped by LAKEBOX_HTTP_MAX_ATTEMPTS=3 attempts" in message


def test_time_budget_bounds_retries(server: str) -> None:
    Scripted.script = [(429, {"Retry-After": "100"})] * 5
    with httpx.Client() as client, pytest.raises(SourceFailedError) as err:
        get_with_retry(client, server, {}, "s", RetryPolicy(max_attempts=5, max_elapsed_s=1), sleep=lambda s: None)
    assert len(Scripted.seen) == 1  # waiting 100 s would break the 1 s budget: fail now
    assert "stopped by LAKEBOX_HTTP_MAX_ELAPSED=1 s" in str(err.value)


class Slow(QuietHandler):
    """Answers every request too late: the client's timeout, not the server, ends each one."""

    seen: ClassVar[int] = 0

    def do_GET(self) -> None:
        Slow.seen += 1
        time.sleep(5)  # the fault under test: a server slower than every timeout in play
        self.send_json(200, b"{}")


def test_slow_responses_do_not_overshoot_the_elapsed_bound() -> None:
    Slow.seen = 0
    policy = RetryPolicy(max_attempts=10, max_elapsed_s=2.5, timeout_s=2.0, base_delay_s=0.01)
    with serve_on_loopback(Slow) as url, httpx.Client() as client, pytest.raises(SourceFailedError) as err:
        started = time.monotonic()
        try:
            get_with_retry(client, f"{url}/x", {}, "slowsrc", policy)
        finally:
            took = time.monotonic() - started
    # the second attempt gets what is left of the 2.5 s (about 0.5 s), not another full 2 s timeout (4 s in all)
    assert took < 3.3, f"retries took {took:.2f}s against a 2.5 s bound"
    assert Slow.seen == 2
    message = str(err.value)
    assert "source slowsrc" in message and "ReadTimeout" in message
    assert "stopped by LAKEBOX_HTTP_MAX_ELAPSED=2.5 s" in message and "raise LAKEBOX_HTTP_MAX_ELAPSED" in message


def test_an_unreadable_response_is_retried_and_a_cure_returns_the_reading(server: str) -> None:
    Scripted.script = [(200, {})]
    bodies = iter([b"not json", b'{"ok": true}'])

    def read(response: httpx.Response) -> bytes:
        body = next(bodies)  # the first reading fails, as a truncated page would
        if body == b"not json":
            raise UnreadableResponse("not a page", body)
        return body

    waits: list[float] = []
    with httpx.Client() as client:
        response, reading = read_with_retry(client, server, {}, "s", RetryPolicy(base_delay_s=0.01), read,
                                            sleep=waits.append)
    assert reading == b'{"ok": true}' and response.status_code == 200
    assert len(Scripted.seen) == 2 and waits == [0.01]


def test_unreadable_responses_that_outlast_the_retries_are_handed_back(server: str) -> None:
    def read(response: httpx.Response) -> None:
        raise UnreadableResponse("not a page", f"bad {len(Scripted.seen) % 2}".encode())

    with httpx.Client() as client, pytest.raises(RetriesExhaustedError) as err:
        read_with_retry(client, server, {}, "s", RetryPolicy(max_attempts=3, base_delay_s=0), read, sleep=lambda s: None)
    assert err.value.unreadable == {b"bad 1": "not a page", b"bad 0": "not a page"}
    assert err.value.bound == "LAKEBOX_HTTP_MAX_ATTEMPTS"
    assert "keeps sending unreadable responses" in str(err.value) and len(Scripted.seen) == 3


def test_client_errors_are_not_retried(server: str) -> None:
    Scripted.script = [(404, {})]
    with httpx.Client() as client, pytest.raises(SourceFailedError, match="HTTP 404"):
        get_with_retry(client, server, {}, "s", RetryPolicy(), sleep=lambda s: None)
    assert len(Scripted.seen) == 1


def test_unreachable_source_is_transient_then_fails() -> None:
    with httpx.Client() as client, pytest.raises(SourceFailedError, match="ConnectError"):
        get_with_retry(client, "http://127.0.0.1:1/x", {}, "s", RetryPolicy(max_attempts=2, base_delay_s=0), sleep=lambda s: None)


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize(("value", "reason"), [("0", "is out of range"), ("abc", "is not a whole number"),
                                               ("-3", "is out of range")])
def test_a_bad_attempt_count_is_a_config_error_naming_the_setting(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        RetryPolicy.from_env({"LAKEBOX_HTTP_MAX_ATTEMPTS": value})
    assert f"LAKEBOX_HTTP_MAX_ATTEMPTS={value!r} {reason}; allowed: a whole number >= 1" in str(err.value)


def test_a_bad_timeout_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"LAKEBOX_HTTP_TIMEOUT='0' is out of range; allowed: a number > 0"):
        RetryPolicy.from_env({"LAKEBOX_HTTP_TIMEOUT": "0"})
