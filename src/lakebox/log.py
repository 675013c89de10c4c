"""JSON-lines logs to $LAKEBOX_HOME/logs/, ready for Loki/Promtail labels, and to stderr.

Run, pipeline and stage come from context variables, so a stage logs plain messages and
every line still says which run it belongs to. Every line passes through `redact`.
On a terminal (`human`), stderr gets short human lines instead of JSON (warnings and
errors; info too when verbose), printed above the run's progress (lakebox.run_view).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from lakebox.settings import redact

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("lakebox_log")
_LOGGER = "lakebox"
_live_console: Any = None


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    token = _context.set({**_context.get({}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            **_context.get({}),
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info and record.levelno >= logging.ERROR:
            line["exc"] = self.formatException(record.exc_info)  # the whole traceback, still one line of JSON
        return redact(orjson.dumps(line, default=str).decode())


class _StderrHandler(logging.Handler):
    """Writes to stderr, or above a live progress bar when one is showing."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if _live_console is not None:
                _live_console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never take the pipeline down
            self.handleError(record)


class _HumanHandler(_StderrHandler):
    """One short line a person reads: `warning: retail ingest: the message (a field, ...)`."""

    def format(self, record: logging.LogRecord) -> str:
        where = " ".join(v for k, v in _context.get({}).items() if k in ("pipeline", "stage"))
        fields = getattr(record, "fields", {})
        shown = ", ".join(f"{k} {_short(v)}" for k, v in fields.items() if k not in ("exc", "traceback"))
        line = f"{record.levelname.lower()}: {where + ': ' if where else ''}{record.getMessage()}"
        return redact(f"{line} ({shown})" if shown else line)


def _short(value: Any, width: int = 60) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Logger:
    """`log.info("landed batch", batch_id=...)`: message plus structured fields."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, msg: str, exc_info: bool, fields: dict[str, Any]) -> None:
        self._logger.log(level, msg, extra={"fields": fields}, exc_info=exc_info)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, False, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, False, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, False, fields)

    def error(self, msg: str, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, msg, exc_info, fields)


def get_logger() -> Logger:
    return Logger(logging.getLogger(_LOGGER))


class DailyFileHandler(logging.Handler):
    """Appends to `lakebox-<day>.jsonl`, the day each record was made: a long-lived
    `lakebox watch` moves to the next file at midnight like a fresh process would."""

    def __init__(self, logs_dir: Path) -> None:
        super().__init__()
        self.logs_dir = logs_dir
        self._day = ""
        self._stream: Any = None

    def path_for(self, day: str) -> Path:
        return self.logs_dir / f"lakebox-{day}.jsonl"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            day = dt.date.fromtimestamp(record.created).isoformat()
            if day != self._day:
                self.close_stream()
                self._stream, self._day = self.path_for(day).open("a", encoding="utf-8"), day
            self._stream.write(self.format(record) + "\n")
            self._stream.flush()
        except Exception:  # noqa: BLE001 - logging must never take the pipeline down
            self.handleError(record)

    def close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self.close_stream()
        super().close()


def configure_logging(logs_dir: Path, level: str = "INFO", *, human: bool = False) -> Path:
    """Send lakebox's logs to one JSON-lines file per day (every level) and to stderr from
    `level` up: as JSON lines, or as short human lines when `human` (a terminal)."""
    logger = logging.getLogger(_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    formatter = JsonLinesFormatter()
    stderr = _HumanHandler() if human else _StderrHandler()
    stderr.setLevel(getattr(logging, level, logging.INFO))
    if not human:
        stderr.setFormatter(formatter)
    logger.addHandler(stderr)
    logs_dir.mkdir(parents=True, exist_ok=True)
    file_handler = DailyFileHandler(logs_dir)
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(formatter)
    logger.addHandler(file_handler)
    return file_handler.path_for(dt.date.today().isoformat())


def quiet_libraries() -> None:
    """Keep MLflow's info lines (a new store's tables, its migrations) off a person's
    terminal; its warnings still show. Before MLflow is imported: it reads this then."""
    import os

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Any]:
    """A progress bar on a terminal; a no-op elsewhere (CI, pipes, tests). Within a run's
    view (lakebox.run_view) the bar is one more line of it."""
    global _live_console
    if not sys.stderr.isatty():
        yield _NoProgress()
        return
    from lakebox import run_view

    if run_view.active is not None:
        with run_view.active.bar(description, total) as shared:
            yield _RichProgress(*shared)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        _live_console = console
        try:
            yield _RichProgress(bar, task)
        finally:
            _live_console = None


class _NoProgress:
    def advance(self, amount: int = 1, total: int | None = None) -> None:
        pass


class _RichProgress:
    def __init__(self, bar: Any, task: Any) -> None:
        self._bar, self._task = bar, task

    def advance(self, amount: int = 1, total: int | None = None) -> None:
        self._bar.update(self._task, advance=amount, total=total)
