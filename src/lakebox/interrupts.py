"""SIGTERM and SIGINT during a run: stop now, roll back, record the run as failed.

While a run is under way its process turns either signal into `RunInterrupted`, raised in
the main thread wherever it is. It is a KeyboardInterrupt, so what already handles Ctrl-C
does the right thing: an open warehouse transaction rolls back as it unwinds (no batch is
half loaded), psycopg cancels the statement on the server and dbt cancels its queries and
lets the model in hand finish. The runner then records the stage and the run as failed
("interrupted by SIGTERM") and passes it on; `lakebox run` exits 128 + the signal's number
(143, 130), as a shell reports a process the signal ended.

A library may turn the interruption into its own error (DuckDB raises RuntimeError "Query
interrupted"), so the guard remembers the signal for the runner to tell. A second signal
during the few milliseconds of clean-up is ignored; SIGKILL still ends the process at
once, and the next run closes the row it left (see `lakebox.locks.process_gone`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["RunInterrupted", "SignalGuard", "stop_on_signals"]


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived while a pipeline ran; `exit_code` is 128 + its number."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(message or f"interrupted by {self.signal_name}")


@dataclass
class SignalGuard:
    """What `stop_on_signals` saw: the first signal's number, or None."""

    received: int | None = None

    def interrupted(self, message: str | None = None) -> RunInterrupted:
        assert self.received is not None
        return RunInterrupted(self.received, message)


@contextmanager
def stop_on_signals() -> Iterator[SignalGuard]:
    """Raise RunInterrupted on SIGTERM or SIGINT for the block, in the main thread.

    A handler of someone else's (`lakebox watch` finishes its run on SIGTERM) is left
    alone, and so is everything off the main thread, where Python cannot take signals."""
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return

    def handle(signum: int, frame: object) -> None:
        if guard.received is not None:
            return  # the first one's clean-up is under way
        guard.received = signum
        raise RunInterrupted(signum)

    previous = {}
    # Python's own Ctrl-C handler raises KeyboardInterrupt, as ours does (Dagster gives it
    # SIGTERM too): taking its place changes only the message, which now names the signal.
    for signum, untouched in ((signal.SIGTERM, (signal.SIG_DFL, signal.default_int_handler)),
                              (signal.SIGINT, (signal.default_int_handler,))):
        current = signal.getsignal(signum)
        if any(current is handler for handler in untouched):
            previous[signum] = current
            signal.signal(signum, handle)
    try:
        yield guard
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
