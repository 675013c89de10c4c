"""What a person sees on a terminal while `lakebox run` (or the demo) goes: a spinner and
bar for the stage under way (dbt's node n of N during transform), a line for each stage
as it ends, log warnings as short lines above them. Nothing when there is no terminal:
the runner's calls here are no-ops unless a view is open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

active: RunView | None = None


def _count(task: Any) -> str:
    return f"{int(task.completed):,}/{int(task.total):,}" if task.total else ""


class RunView:
    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, RenderableColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column

        class CountColumn(RenderableColumn):
            def render(self, task: Any) -> Any:
                return _count(task)

        self.console = console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                                  ratio=1)),
            BarColumn(bar_width=16), CountColumn(), TimeElapsedColumn(), console=console, transient=True,
            expand=True)
        self._stage: Any = None
        self._where = ""

    def stage_started(self, pipeline: str, stage: str) -> None:
        self._where = f"{pipeline} {stage}"
        self._stage = self.progress.add_task(self._where, total=None)

    def stage_finished(self, pipeline: str, stage: str, status: str, seconds: float, rows_in: int,
                       rows_out: int) -> None:
        if self._stage is not None:
            self.progress.remove_task(self._stage)
            self._stage = None
        mark, colour = ("✓", "green") if status == "success" else ("✗", "red")
        rows = ", ".join(f"{n:,} {what}" for n, what in ((rows_in, "rows in"), (rows_out, "out")) if n)
        self.console.print(f"[{colour}]{mark}[/] {pipeline} [bold]{stage}[/] {seconds:.1f} s  {rows}".rstrip(),
                           highlight=False)

    def dbt_node(self, index: int, total: int, description: str) -> None:
        """dbt started node `index` of `total` (models and their tests, in build order);
        `description` is dbt's, e.g. "sql table model analytics.store_insights"."""
        if self._stage is not None:
            words = description.split()
            what = f"{words[-2]} {words[-1]}" if len(words) >= 2 and words[-2] == "model" else description
            self.progress.update(self._stage, total=total, completed=index - 1,
                                 description=f"{self._where}: dbt {what}")

    @contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[tuple[Any, Any]]:
        task = self.progress.add_task(f"  {description}", total=total)
        try:
            yield self.progress, task
        finally:
            self.progress.remove_task(task)


@contextmanager
def run_view() -> Iterator[RunView]:
    """Show runs on stderr, a terminal, until the block ends; log lines print above."""
    global active
    from rich.console import Console

    from lakebox import log

    view = RunView(Console(stderr=True))
    with view.progress:
        active, log._live_console = view, view.console
        try:
            yield view
        finally:
            active, log._live_console = None, None


def stage_started(pipeline: str, stage: str) -> None:
    if active is not None:
        active.stage_started(pipeline, stage)


def stage_finished(pipeline: str, stage: str, status: str, seconds: float, rows_in: int, rows_out: int) -> None:
    if active is not None:
        active.stage_finished(pipeline, stage, status, seconds, rows_in, rows_out)


def dbt_event(event: Any) -> None:
    """dbtRunner's callback: each node dbt starts moves the transform stage's bar. Never
    raises (an error here would fail dbt's build)."""
    if active is None:
        return
    try:
        if event.info.name == "LogStartLine":
            active.dbt_node(int(event.data.index), int(event.data.total), str(event.data.description))
    except Exception:  # noqa: BLE001 - progress is best effort
        pass
