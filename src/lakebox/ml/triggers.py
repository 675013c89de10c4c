"""Retraining triggers: a schedule, drift flagged, live quality below a threshold.

`check` looks at one model and says whether (and why) it should be retrained now;
`retrain` trains it, the trigger recorded with the training run (MLflow tags
`lakebox.trigger`, `lakebox.trigger_reason`; ml.model_decisions `decided_by`
`trigger:<kind>` and the reason), and the new version still faces the champion rule.
`lakebox serve` (a Dagster sensor) and `lakebox watch` call them.

Each trigger fires once for its evidence, kept in ml.model_triggers, so a tick that
finds nothing new retrains nothing:
- quality: the champion's newest judged day (>= `quality_min_rows` labelled predictions)
  is worse than `quality_threshold`; once per champion version (an alert goes out then);
- drift: the newest ml.drift_report, computed after the champion was registered, flags
  a feature; once per champion version;
- schedule: a tick of `retrain_schedule` passed since the champion was registered and
  since the last scheduled retraining; once per tick.
Settings are the pipeline's (`LAKEBOX_<PIPELINE>_RETRAIN_SCHEDULE`, ...), applied to each
of its models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lakebox.log import get_logger
from lakebox.ml import history, performance, registry, tables, tracking

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.ml.spec import MLModelSpec
    from lakebox.ml.train import TrainResult
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

Kind = Literal["quality", "drift", "schedule"]


@dataclass(frozen=True)
class Trigger:
    model_name: str
    kind: Kind
    evidence: str  # what it fired on; (kind, evidence) fires once per model
    champion: str  # the champion's label when it fired
    reason: str

    @property
    def run_key(self) -> str:
        return f"{self.model_name}:{self.kind}:{self.evidence}"


@dataclass(frozen=True)
class TriggerSettings:
    schedule: str  # cron, or "off"
    on_drift: bool
    threshold: float | None
    min_rows: int


def settings_for(settings: Settings, pipeline: str) -> TriggerSettings:
    """The pipeline's trigger settings (also for a pipeline registered only at run time)."""
    from lakebox import core_settings as core

    def value(key: str) -> object:
        return core.for_pipeline(key, pipeline).optional(settings.env)

    threshold = value("quality_threshold")
    return TriggerSettings(str(value("retrain_schedule") or "off"), value("retrain_on_drift") == "on",
                           None if threshold is None else float(str(threshold)), int(str(value("quality_min_rows"))))


def check(settings: Settings, warehouse: Warehouse, spec: MLModelSpec, now: dt.datetime | None = None) -> Trigger | None:
    """The trigger due for `spec` now, if any (quality first, then drift, then schedule).
    Refreshes ml.model_performance; alerts when live quality has dropped below the threshold."""
    from lakebox.warehouse.ops import utcnow

    wanted = settings_for(settings, spec.pipeline)
    with tracking.store_errors(settings):
        client, past = history.open_store(settings, warehouse, spec.name)
        champion = registry.champion_version(client, spec.name)
        live = performance.refresh(warehouse, spec)
        if champion is None:  # no model in service: the train stage trains a first one
            return None
        since = dt.datetime.fromtimestamp(client.get_model_version(spec.name, champion).creation_timestamp / 1000,
                                          dt.UTC).replace(tzinfo=None)
    label = past.label(champion)
    fired = _fired(warehouse, spec.name)
    candidates = [
        _quality(spec, wanted, live, label),
        _drift(warehouse, spec, label, since) if wanted.on_drift else None,
        _schedule(spec, wanted.schedule, label, since, fired, now or utcnow()) if wanted.schedule.lower() != "off"
        else None,
    ]
    found = next((t for t in candidates if t is not None and (t.kind, t.evidence) not in fired), None)
    if found is not None and found.kind == "quality":
        _alert(settings, found)
    return found


def retrain(settings: Settings, warehouse: Warehouse, spec: MLModelSpec, trigger: Trigger,
            lakebox_run_id: str | None = None) -> TrainResult:
    """Train `spec` because of `trigger` (under the pipeline's run lock: never beside a run of
    it) and record the trigger with what came of it."""
    from lakebox.locks import exclusive
    from lakebox.ml.train import train

    with exclusive(settings.home, f"run-{spec.pipeline}", f"pipeline {spec.pipeline}", note=trigger.run_key):
        result = train(settings, warehouse, spec, lakebox_run_id=lakebox_run_id, trigger=trigger)
    _record(warehouse, trigger, result)
    get_logger().info("retrained on trigger", model=spec.name, trigger=trigger.kind, reason=trigger.reason,
                      status=result.status, decision=result.decision.decision if result.decision else None)
    return result


def check_and_retrain(settings: Settings, warehouse: Warehouse, specs: list[MLModelSpec]) -> list[TrainResult]:
    """Every due trigger of `specs`, retrained (what `lakebox watch` does each time it looks)."""
    done = []
    for spec in specs:
        found = check(settings, warehouse, spec)
        if found is not None:
            done.append(retrain(settings, warehouse, spec, found))
    return done


def _fired(warehouse: Warehouse, name: str) -> set[tuple[str, str]]:
    if not warehouse.table_exists("ml", "model_triggers"):
        return set()
    rows = warehouse.query(f"select kind, evidence from {tables.MODEL_TRIGGERS} where model_name = ?", [name])
    return {(str(k), str(e)) for k, e in rows}


def _quality(spec: MLModelSpec, wanted: TriggerSettings, live: pa.Table, label: str) -> Trigger | None:
    import pyarrow.compute as pc

    if wanted.threshold is None or live.num_rows == 0:
        return None
    mine = live.filter(pc.and_(pc.equal(live["model_version"], label),
                               pc.greater_equal(live["labelled_rows"], wanted.min_rows)))
    mine = mine.filter(pc.is_valid(mine["value"]))
    if mine.num_rows == 0:
        return None
    newest = mine.sort_by([("day", "descending")]).slice(0, 1).to_pylist()[0]
    value = float(newest["value"])
    worse = value < wanted.threshold if spec.greater_is_better else value > wanted.threshold
    if not worse:
        return None
    side = "below" if spec.greater_is_better else "above"
    return Trigger(spec.name, "quality", f"v{label}", label,
                   f"live {spec.metric} of champion v{label} on {newest['day']} is {value:.4f} "
                   f"({newest['labelled_rows']} labelled predictions), {side} the threshold {wanted.threshold:g}")


def _drift(warehouse: Warehouse, spec: MLModelSpec, label: str, since: dt.datetime) -> Trigger | None:
    if not warehouse.table_exists("ml", "drift_report"):
        return None
    rows = warehouse.query(
        f"select feature from {tables.DRIFT_REPORT} where model_name = ? and drifted and computed_at = "
        f"(select max(computed_at) from {tables.DRIFT_REPORT} where model_name = ?) and computed_at > ? "
        "order by feature", [spec.name, spec.name, since])
    if not rows:
        return None
    features = ", ".join(str(r[0]) for r in rows)
    return Trigger(spec.name, "drift", f"v{label}", label,
                   f"ml.drift_report flags drift in {features} since champion v{label} was registered")


def _schedule(spec: MLModelSpec, cron: str, label: str, since: dt.datetime, fired: set[tuple[str, str]],
              now: dt.datetime) -> Trigger | None:
    # the croniter Dagster reads schedules with (lakebox.cron checks them against it); untyped
    from dagster._vendored.croniter import croniter  # type: ignore[attr-defined]

    tick: dt.datetime = croniter(cron, now).get_prev(dt.datetime)  # type: ignore[no-untyped-call]
    last = max([since, *(dt.datetime.fromisoformat(e) for k, e in fired if k == "schedule")])
    if tick <= last:
        return None
    return Trigger(spec.name, "schedule", tick.isoformat(), label,
                   f"retrain schedule {cron!r}: its tick at {tick:%Y-%m-%d %H:%M} UTC passed")


def _alert(settings: Settings, trigger: Trigger) -> None:
    from lakebox.observability import send_alert

    get_logger().warning("live quality dropped", model=trigger.model_name, champion=trigger.champion,
                         reason=trigger.reason)
    send_alert(settings, f"{trigger.model_name}:live_quality:{trigger.champion}", "live_quality",
               f":warning: lakebox model {trigger.model_name}: {trigger.reason}; retraining",
               {"model": trigger.model_name, "champion": trigger.champion, "reason": trigger.reason})


def _record(warehouse: Warehouse, trigger: Trigger, result: TrainResult) -> None:
    import pyarrow as pa

    from lakebox.warehouse.ops import utcnow

    made = result.decision
    tables.ensure(warehouse, tables.MODEL_TRIGGERS)
    row = pa.table({
        "model_name": [trigger.model_name], "kind": [trigger.kind], "evidence": [trigger.evidence],
        "champion_version": [trigger.champion], "reason": [trigger.reason],
        "fired_at": pa.array([utcnow()], pa.timestamp("us")),
        "version": pa.array([made.version if made else None], pa.string()),
        "decision": pa.array([made.decision if made else result.status], pa.string()),
        "run_id": pa.array([made.run_id if made else None], pa.string()),
    })
    tables.append(warehouse, tables.MODEL_TRIGGERS, row)
