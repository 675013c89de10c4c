"""A model's history as lakebox's own tables record it, and the MLflow store that must hold it.

MLflow numbers versions per store: a store lost and replaced by an empty one starts again
at version 1, and lakebox's tables (ml.model_decisions, the predictions) would hold two
different "v1"s. So each model's history has a store id, kept in the store (the registered
model's tag `lakebox.store_id`) and in `ml.model_stores`. Before a step uses the store,
the store must carry that id and hold the newest version the decisions record; when it
does not, lakebox stops with one line: restore the store, or `lakebox ml forget MODEL
--reason ...`, which starts a new generation of the model's history, visibly (a row in
ml.model_decisions and one in ml.model_stores). Versions of a later generation are
labelled `<version>.g<generation>` in lakebox's tables (v1 of generation 2 is "1.g2"), so
rows written before keep their meaning.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakebox.log import get_logger
from lakebox.ml import tables, tracking

if TYPE_CHECKING:
    from lakebox.ml.spec import MLModelSpec
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

STORE_TAG = "lakebox.store_id"
FORGOTTEN = "forgotten"  # the decision of the ml.model_decisions row `forget` writes


@dataclass(frozen=True)
class History:
    model_name: str
    generation: int  # 1 until the first `lakebox ml forget`
    store_id: str | None  # None: nothing registered in this generation yet

    def label(self, version: str) -> str:
        """How lakebox's tables name MLflow version `version` of this generation."""
        return version if self.generation == 1 else f"{version}.g{self.generation}"


def mlflow_version(label: str) -> str:
    """The MLflow version a label of lakebox's tables names ("3.g2" -> "3")."""
    return label.split(".g", 1)[0]


def generation_of(label: str) -> int:
    """The generation a label of lakebox's tables belongs to (0: not a version, such as "-")."""
    number, _, generation = label.partition(".g")
    return int(generation) if generation.isdigit() else 1 if number.isdigit() else 0


def current_generation(warehouse: Warehouse, name: str) -> int:
    """The model's current generation as ml.model_stores records it."""
    recorded = _current(warehouse, name)
    return recorded[0] if recorded else 1


def open_store(settings: Settings, warehouse: Warehouse, name: str) -> tuple[Any, History]:
    """An MlflowClient on the store, checked to hold the history lakebox recorded for `name`."""
    client = tracking.connect(settings)
    return client, check(settings, warehouse, client, name)


def checked_store(settings: Settings, warehouse: Warehouse, name: str) -> tuple[Any, History]:
    """`open_store`, with whatever the store raises as one StoreError line."""
    with tracking.store_errors(settings):
        return open_store(settings, warehouse, name)


def check(settings: Settings, warehouse: Warehouse, client: Any, name: str) -> History:
    """The model's current history; a StoreError naming the choices if the store lost it."""
    recorded = _current(warehouse, name)
    generation, store_id = recorded if recorded else (1, None)
    newest = _newest_decided(warehouse, name, generation)
    found, tag = _store_tag(client, name)
    if recorded is None:
        if newest is None:
            return History(name, 1, None)
        if found and _holds(client, name, newest):  # a home from before store ids: adopt its store
            return bind(settings, warehouse, client, History(name, 1, None))
        raise _lost(settings, name, generation, newest, None, found, tag)
    if store_id is None:
        return History(name, generation, None)
    if tag == store_id and (newest is None or _holds(client, name, newest)):
        return History(name, generation, store_id)
    raise _lost(settings, name, generation, newest, store_id, found, tag)


def bind(settings: Settings, warehouse: Warehouse, client: Any, history: History) -> History:
    """Tie this generation to the store (its tag, or a new id) once the registered model exists."""
    if history.store_id is not None:
        return history
    found, tag = _store_tag(client, history.model_name)
    store_id = tag or uuid.uuid4().hex
    if found and tag is None:
        client.set_registered_model_tag(history.model_name, STORE_TAG, store_id)
    tables.ensure(warehouse, tables.MODEL_STORES)
    with warehouse.transaction():
        if _current(warehouse, history.model_name) is None:
            _append_store(warehouse, history.model_name, history.generation, store_id,
                          tracking.store_name(settings), "first use of this store")
        else:
            warehouse.execute("update ml.model_stores set store_id = ?, tracking_uri = ? "
                              "where model_name = ? and generation = ?",
                              [store_id, tracking.store_name(settings), history.model_name, history.generation])
    return History(history.model_name, history.generation, store_id)


def forget(settings: Settings, warehouse: Warehouse, spec: MLModelSpec, reason: str) -> History:
    """Start `spec`'s history over: a new generation, no champion, a row saying why."""
    import pyarrow as pa

    from lakebox.warehouse.ops import utcnow

    name = spec.name
    recorded = _current(warehouse, name)
    old, store_id = recorded if recorded else (1, None)
    newest = _newest_decided(warehouse, name, old)
    new = History(name, old + 1, None)
    cleared = _clear_aliases(settings, name)
    why = (f"history started over as generation {new.generation}: {reason}; generation {old} "
           f"({'no versions' if newest is None else f'versions up to {History(name, old, None).label(str(newest))}'}"
           f"{f', store id {store_id}' if store_id else ''}) is forgotten, its rows keep their labels; new "
           f"versions are labelled N.g{new.generation} (store {tracking.store_name(settings)}{cleared})")
    tables.ensure(warehouse, tables.MODEL_STORES)
    tables.ensure(warehouse, tables.MODEL_DECISIONS)
    row = pa.table({
        "model_name": [name], "version": ["-"], "decision": [FORGOTTEN], "metric": [spec.metric],
        "value": pa.nulls(1, pa.float64()), "champion_value": pa.nulls(1, pa.float64()), "reason": [why],
        "decided_at": pa.array([utcnow()], pa.timestamp("us")), "run_id": pa.nulls(1, pa.string()),
    })
    with warehouse.transaction():
        _append_store(warehouse, name, new.generation, None, tracking.store_name(settings), reason)
    tables.append(warehouse, tables.MODEL_DECISIONS, row)
    get_logger().warning("model history started over", model=name, generation=new.generation, reason=reason)
    return new


def _clear_aliases(settings: Settings, name: str) -> str:
    """Drop the champion and challenger aliases if the store is there to hold them."""
    from mlflow.exceptions import MlflowException

    try:
        client = tracking.connect(settings)
        aliases = dict(client.get_registered_model(name).aliases)
        for alias in ("champion", "challenger"):
            if alias in aliases:
                client.delete_registered_model_alias(name, alias)
    except (tracking.StoreError, MlflowException):
        return "; not reachable or without the model, nothing cleared there"
    return f"; aliases {', '.join(sorted(a for a in aliases if a in ('champion', 'challenger'))) or 'none'} cleared"


def _append_store(warehouse: Warehouse, name: str, generation: int, store_id: str | None, uri: str,
                  reason: str) -> None:
    from lakebox.warehouse.ops import utcnow

    warehouse.execute("insert into ml.model_stores (model_name, generation, store_id, tracking_uri, started_at, "
                      "reason) values (?, ?, ?, ?, ?, ?)", [name, generation, store_id, uri, utcnow(), reason])


def _current(warehouse: Warehouse, name: str) -> tuple[int, str | None] | None:
    if not warehouse.table_exists("ml", "model_stores"):
        return None
    rows = warehouse.query("select generation, store_id from ml.model_stores where model_name = ? "
                           "order by generation desc limit 1", [name])
    return (int(rows[0][0]), rows[0][1]) if rows else None


def _newest_decided(warehouse: Warehouse, name: str, generation: int) -> int | None:
    """The newest MLflow version of `generation` that ml.model_decisions records."""
    if not warehouse.table_exists("ml", "model_decisions"):
        return None
    labels = [r[0] for r in warehouse.query("select distinct version from ml.model_decisions "
                                            "where model_name = ? and decision <> ?", [name, FORGOTTEN])]
    versions = [int(mlflow_version(v)) for v in labels if generation_of(v) == generation]
    return max(versions) if versions else None


def _store_tag(client: Any, name: str) -> tuple[bool, str | None]:
    """(the store has the registered model, its store id tag)."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False, None
        raise
    return True, (model.tags or {}).get(STORE_TAG)


def _holds(client: Any, name: str, version: int) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def _lost(settings: Settings, name: str, generation: int, newest: int | None, store_id: str | None,
          found: bool, tag: str | None) -> tracking.StoreError:
    history = History(name, generation, store_id)
    recorded = (f"ml.model_decisions records versions up to v{history.label(str(newest))}" if newest is not None
                else "ml.model_decisions records no version yet")
    if store_id:
        recorded += f", ml.model_stores its store id {store_id}"
    if not found:
        holds = f"the store has no model {name}"
    elif store_id and tag != store_id:
        holds = f"its model {name} carries store id {tag or '(none)'}"
    else:
        holds = f"it lacks v{newest}"
    return tracking.StoreError(
        f"model {name}: the MLflow store {tracking.store_name(settings)} does not hold the history lakebox "
        f"recorded ({recorded}; {holds}): restore that store (MLFLOW_TRACKING_URI, or $LAKEBOX_HOME/mlflow.db "
        f"and its artifacts), or start the model's history over with `lakebox ml forget {name} --reason '...'`")
