"""Moving the champion alias by hand: `lakebox ml promote` and `lakebox ml rollback`, and
the history of every move (`lakebox ml history`).

Every move of the alias, by the champion rule or by a person, is a row of
ml.model_decisions: the version now champion (decision `champion`), the one before it
(`from_version`), who (`decided_by`: `rule`, or `user:<OS user>`), why, when. A row by hand
carries the metric value the version was registered with, so "the champion's figure" stays
that of the version holding the alias. MLflow keeps no history of an alias; this table does.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.errors import ConfigError
from lakebox.log import get_logger
from lakebox.ml import history, tables, tracking
from lakebox.ml.registry import CHALLENGER, CHAMPION, champion_version

if TYPE_CHECKING:
    from lakebox.ml.spec import MLModelSpec
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse


@dataclass(frozen=True)
class Move:
    model_name: str
    from_version: str | None
    to_version: str
    decided_by: str
    reason: str


def person() -> str:
    """`user:<OS user>`: who moved an alias by hand."""
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def promote(settings: Settings, warehouse: Warehouse, spec: MLModelSpec, version: str, reason: str,
            by: str | None = None) -> Move:
    """Make `version` (MLflow's number or lakebox's label) the champion, with a row saying why."""
    with tracking.store_errors(settings):
        client, past = history.open_store(settings, warehouse, spec.name)
        return _move(warehouse, client, spec, past, history.mlflow_version(version), reason, by or person())


def rollback(settings: Settings, warehouse: Warehouse, spec: MLModelSpec, reason: str, to: str | None = None,
             by: str | None = None) -> Move:
    """Give the champion alias back to `to`, or to the version that held it before the current one."""
    with tracking.store_errors(settings):
        client, past = history.open_store(settings, warehouse, spec.name)
        current = champion_version(client, spec.name)
        if to is None:
            earlier = _previous_champion(warehouse, spec.name, past, current)
            if earlier is None:
                raise ConfigError(f"model {spec.name}: no earlier champion in ml.model_decisions to roll back to "
                                  f"(current: {'none' if current is None else 'v' + past.label(current)}); name one "
                                  "with --to VERSION")
            to = earlier
        return _move(warehouse, client, spec, past, history.mlflow_version(to), reason, by or person())


def decisions(warehouse: Warehouse, name: str) -> list[dict[str, Any]]:
    """Every row of ml.model_decisions for `name`, oldest first."""
    if not warehouse.table_exists("ml", "model_decisions"):
        return []
    tables.ensure_added(warehouse, tables.MODEL_DECISIONS)
    rows = warehouse.query("select decided_at, version, from_version, decision, decided_by, metric, value, reason "
                           "from ml.model_decisions where model_name = ? order by decided_at", [name])
    keys = ("decided_at", "version", "from_version", "decision", "decided_by", "metric", "value", "reason")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _move(warehouse: Warehouse, client: Any, spec: MLModelSpec, past: history.History, version: str, reason: str,
          by: str) -> Move:
    from mlflow.exceptions import MlflowException

    if not reason.strip():
        raise ConfigError("--reason must say why the champion moves (it is kept in ml.model_decisions)")
    try:
        client.get_model_version(spec.name, version)
    except MlflowException:
        raise ConfigError(f"model {spec.name} has no version {version!r} in its MLflow store; "
                          f"`lakebox ml history {spec.name}` lists the versions it has held") from None
    current = champion_version(client, spec.name)
    if current == version:
        raise ConfigError(f"model {spec.name}: v{past.label(version)} is already the champion; nothing moved")
    aliases = dict(client.get_registered_model(spec.name).aliases)
    client.set_registered_model_alias(spec.name, CHAMPION, version)
    if str(aliases.get(CHALLENGER)) == version:  # a challenger promoted is no longer one
        client.delete_registered_model_alias(spec.name, CHALLENGER)
    move = Move(spec.name, None if current is None else past.label(current), past.label(version), by, reason.strip())
    _record(warehouse, spec, move)
    get_logger().info("champion moved", model=spec.name, version=move.to_version, before=move.from_version,
                      by=by, reason=move.reason)
    return move


def _record(warehouse: Warehouse, spec: MLModelSpec, move: Move) -> None:
    import pyarrow as pa

    from lakebox.warehouse.ops import utcnow

    tables.ensure_added(warehouse, tables.MODEL_DECISIONS)
    registered = warehouse.query("select value from ml.model_decisions where model_name = ? and version = ? "
                                 "and run_id is not null order by decided_at limit 1", [spec.name, move.to_version])
    row = pa.table({
        "model_name": [spec.name], "version": [move.to_version], "decision": [CHAMPION], "metric": [spec.metric],
        "value": pa.array([registered[0][0] if registered else None], pa.float64()),
        "champion_value": pa.nulls(1, pa.float64()), "reason": [move.reason],
        "decided_at": pa.array([utcnow()], pa.timestamp("us")), "run_id": pa.nulls(1, pa.string()),
        "from_version": pa.array([move.from_version], pa.string()), "decided_by": [move.decided_by],
    })
    tables.append(warehouse, tables.MODEL_DECISIONS, row)


def _previous_champion(warehouse: Warehouse, name: str, past: history.History, current: str | None) -> str | None:
    """The version that held the alias before the current champion (this generation's rows)."""
    held = [str(r["version"]) for r in decisions(warehouse, name)
            if r["decision"] == CHAMPION and history.generation_of(str(r["version"])) == past.generation]
    now = None if current is None else past.label(current)
    while held and held[-1] == now:
        held.pop()
    return held[-1] if held else None


def set_canary(settings: Settings, warehouse: Warehouse, spec: MLModelSpec, percent: float) -> str:
    """Record the canary share on the registered model (tag `lakebox.canary_percent`), where a
    server's registry poll reads it; a share above 0 needs a challenger."""
    from mlflow.exceptions import MlflowException

    from lakebox.ml.serving.catalog import CANARY_TAG

    with tracking.store_errors(settings):
        client, past = history.open_store(settings, warehouse, spec.name)
        try:
            aliases = {a: str(v) for a, v in client.get_registered_model(spec.name).aliases.items()}
        except MlflowException:
            raise ConfigError(f"model {spec.name} is not registered yet; train it first") from None
        if percent > 0 and CHALLENGER not in aliases:
            raise ConfigError(f"model {spec.name} has no challenger to send requests to; train one first (a "
                              "version that does not beat the champion becomes challenger)")
        client.set_registered_model_tag(spec.name, CANARY_TAG, f"{percent:g}")
    get_logger().info("canary set", model=spec.name, percent=percent, by=person())
    if percent == 0:
        return f"{spec.name}: canary stopped; the champion answers every request (the challenger still shadows)"
    return (f"{spec.name}: {percent:g}% of requests go to challenger v{past.label(aliases[CHALLENGER])} "
            f"(sticky by X-Request-Key); `lakebox ml canary {spec.name} --percent 0` stops it")
