"""What a stage is: a plain function of a `RunContext` that returns a `StageResult`.

It sits below ingest, quality, transform and ML, which provide stages, and below the
runner, which runs them in order; so the parts a stage is made of never import the runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakebox.lake import Lake
from lakebox.log import Logger, get_logger
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse
from lakebox.warehouse.ops.quarantine import QuarantineItem


@dataclass
class StageResult:
    rows_in: int = 0
    rows_out: int = 0


@dataclass(frozen=True)
class Stage:
    name: str
    fn: Callable[[RunContext], StageResult | None]


@dataclass
class RunContext:
    settings: Settings
    lake: Lake
    warehouse: Warehouse
    run_id: str
    pipeline: str
    log: Logger = field(default_factory=get_logger)
    quarantined: list[QuarantineItem] = field(default_factory=list)
    gate_stops: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def note_quarantined(self, item: QuarantineItem) -> None:
        """Note input quarantined by this run; good input keeps flowing."""
        self.quarantined.append(item)

    def stop_at_gate(self, message: str) -> None:
        """The gate stopped its source (fail-fast, whole-source drift): the run fails after
        this stage, before any mart is built."""
        self.gate_stops.append(message)
