"""Row counts that look wrong, caught from a pipeline's third run.

After every run the rows landed per source, each raw table and each mart of the pipeline
are recorded in `ops.table_stats`. A count is compared with the same dataset's last
LAKEBOX_ANOMALY_RUNS runs (the same weekday's when there are at least three of those, so a
weekly rhythm is not an anomaly): on a log scale, where a halving and a doubling are the
same distance, it flags when it is more than LAKEBOX_ANOMALY_K scaled MADs from the median
and outside ×/÷ LAKEBOX_ANOMALY_FLOOR of it (the floor keeps quiet data, whose MAD is 0,
from flagging on tiny changes). A drop to zero always flags. A flag is a row in
`ops.anomalies`, a warning in the run's log, a metric and an alert to the webhook.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from lakebox.pipelines.spec import PipelineSpec
    from lakebox.settings import Settings
    from lakebox.stage import RunContext
    from lakebox.warehouse import Warehouse

DDL = (
    """create table if not exists ops.table_stats (
        run_id varchar not null, pipeline varchar not null, kind varchar not null, dataset varchar not null,
        row_count bigint not null, run_day date not null, recorded_at timestamp not null)""",
    """create table if not exists ops.anomalies (
        run_id varchar not null, pipeline varchar not null, kind varchar not null, dataset varchar not null,
        row_count bigint not null, median double precision, low double precision, high double precision,
        history bigint not null, detail varchar not null, detected_at timestamp not null)""",
)
MIN_HISTORY = 2  # earlier runs needed: the third run is the first judged
MIN_SAME_WEEKDAY = 3
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Anomaly:
    kind: str  # batches | raw | mart
    dataset: str
    rows: int
    median: float
    low: float
    high: float
    history: int
    detail: str


@dataclass(frozen=True)
class Rule:
    k: float = 4.0
    runs: int = 28
    floor: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Rule:
        from lakebox import core_settings as core

        env = settings.env
        return cls(core.ANOMALY_K.read(env), core.ANOMALY_RUNS.read(env), core.ANOMALY_FLOOR.read(env))

    def judge(self, rows: int, history: Sequence[tuple[int, dt.date]], day: dt.date) -> tuple[bool, float, float,
                                                                                               float, str]:
        """(flagged, median, low, high, why) of `rows` against earlier (count, day)s, newest first."""
        same = [n for n, d in history if d.weekday() == day.weekday()]
        basis = same if len(same) >= MIN_SAME_WEEKDAY else [n for n, _ in history]
        logs = [math.log1p(n) for n in basis]
        mid = statistics.median(logs)
        spread = MAD_TO_SIGMA * statistics.median(abs(v - mid) for v in logs)
        half = max(self.k * spread, math.log(self.floor))
        median, low, high = math.expm1(mid), math.expm1(mid - half), math.expm1(mid + half)
        scope = f"the last {len(basis)} {day.strftime('%A')} runs" if basis is same else f"the last {len(basis)} runs"
        if rows == 0 and median > 0:
            return True, median, low, high, f"dropped to 0 rows (median {median:.0f} over {scope})"
        if abs(math.log1p(rows) - mid) > half:
            return True, median, low, high, (f"{rows} rows, outside {max(low, 0):.0f}..{high:.0f} "
                                             f"(median {median:.0f} over {scope})")
        return False, median, low, high, ""


def ensure_tables(wh: Warehouse) -> None:
    for ddl in DDL:
        wh.execute(ddl)


def record_and_judge(wh: Warehouse, rule: Rule, run_id: str, pipeline: str,
                     counts: Mapping[tuple[str, str], int], day: dt.date) -> list[Anomaly]:
    """Record this run's (kind, dataset) → rows and return those that look wrong."""
    from lakebox.warehouse.ops import utcnow

    ensure_tables(wh)
    found = []
    for (kind, name), rows in counts.items():
        history = [(int(n), d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))) for n, d in wh.query(
            "select row_count, run_day from ops.table_stats where pipeline = ? and kind = ? and dataset = ? "
            "order by recorded_at desc limit ?", [pipeline, kind, name, rule.runs])]
        if len(history) >= MIN_HISTORY:
            flagged, median, low, high, why = rule.judge(rows, history, day)
            if flagged:
                found.append(Anomaly(kind, name, rows, median, low, high, len(history), why))
    now = utcnow()
    with wh.transaction():
        for (kind, name), rows in counts.items():
            wh.execute("insert into ops.table_stats values (?, ?, ?, ?, ?, ?, ?)",
                       [run_id, pipeline, kind, name, int(rows), day, now])
        for a in found:
            wh.execute("insert into ops.anomalies values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [run_id, pipeline, a.kind, a.dataset, a.rows, a.median, a.low, a.high, a.history, a.detail,
                        now])
    return found


def run_counts(ctx: RunContext) -> dict[tuple[str, str], int]:
    """Rows this run landed per source, and rows now in the pipeline's raw tables and marts."""
    from lakebox.observability.lineage.datasets import raw_tables

    wh = ctx.warehouse
    counts: dict[tuple[str, str], int] = {
        ("batches", source): int(n) for source, n in wh.query(
            "select source, coalesce(sum(rows), 0) from ops.batches where run_id = ? group by source order by source",
            [ctx.run_id])}
    sources = [s for (s,) in wh.query(
        "select distinct b.source from ops.batches b join ops.pipeline_runs r on r.run_id = b.run_id "
        "where r.pipeline = ? order by b.source", [ctx.pipeline])]
    tables = [("raw", t) for t in raw_tables(ctx, sources)]
    tables += [("mart", f"analytics.{m}") for m in _marts(ctx.settings, ctx.pipeline) if wh.table_exists("analytics", m)]
    if tables:
        union = " union all ".join(f"select {i}, count(*) from {name}" for i, (_, name) in enumerate(tables))
        for i, n in wh.query(union):
            counts[tables[int(i)]] = int(n)
    return counts


def _marts(settings: Settings, pipeline: str) -> list[str]:
    """The pipeline's marts: the models in its folder's models/marts (docs/pipelines.md)."""
    from lakebox.settings import discovered_pipelines

    spec = cast("Mapping[str, PipelineSpec]", discovered_pipelines(settings.env)).get(pipeline)
    if spec is None or not spec.folder:
        return []
    return sorted(p.stem for p in (Path(spec.folder) / "models" / "marts").rglob("*.sql"))


def note_row_counts(ctx: RunContext) -> list[Anomaly]:
    """After a run: record its row counts, and warn, count and alert on what looks wrong.
    Never fails the run."""
    try:
        found = record_and_judge(ctx.warehouse, Rule.from_settings(ctx.settings), ctx.run_id, ctx.pipeline,
                                 run_counts(ctx), dt.datetime.now(dt.UTC).date())
    except Exception as exc:  # noqa: BLE001 - row counts never fail a run
        ctx.log.warning("row counts: could not record or check them", error=f"{type(exc).__name__}: {exc}")
        return []
    for a in found:
        ctx.log.warning(f"row-count anomaly: {a.kind} {a.dataset}: {a.detail}", dataset=a.dataset, kind=a.kind,
                        rows=a.rows, median=round(a.median, 1))
    if found:
        _count(ctx.pipeline, found)
        _alert(ctx, found)
    return found


def _count(pipeline: str, found: Sequence[Anomaly]) -> None:
    from lakebox.observability import metrics

    counter = _anomaly_counter()
    for a in found:
        counter.labels(pipeline, a.kind, a.dataset).inc()
    metrics._version[0] += 1


_counter: Any = None


def _anomaly_counter() -> Any:
    """Created on first use, so that prometheus_client loads only when something flags."""
    global _counter
    if _counter is None:
        from prometheus_client import Counter

        from lakebox.observability.metrics import PROCESS

        _counter = Counter("lakebox_row_count_anomalies", "Row counts flagged as anomalies (ops.anomalies).",
                           ["pipeline", "kind", "dataset"], registry=PROCESS)
    return _counter


def _alert(ctx: RunContext, found: Sequence[Anomaly]) -> None:
    from lakebox.observability import _alerts_for
    from lakebox.observability.alerts import Alert

    alerting = _alerts_for(ctx.settings)
    if alerting is None:
        return
    lines = "\n".join(f"• {a.kind} {a.dataset}: {a.detail}" for a in found)
    alerting.sender.send(Alert(
        f"{ctx.pipeline}:anomaly:{ctx.run_id}", "anomaly",
        f":warning: lakebox {ctx.pipeline}: row counts look wrong in run {ctx.run_id}\n{lines}",
        {"pipeline": ctx.pipeline, "run_id": ctx.run_id,
         "anomalies": [{"kind": a.kind, "dataset": a.dataset, "rows": a.rows, "median": round(a.median, 1),
                        "detail": a.detail} for a in found]}))
