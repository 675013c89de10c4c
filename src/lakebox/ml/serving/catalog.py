"""The models a server answers for, each alias's version loaded, and the swap when an alias
moves.

A background thread looks at the registry's aliases every LAKEBOX_SERVE_POLL seconds. A
version an alias now points at is loaded fully before the reference requests read is
replaced (one assignment), so a request is always served by a whole model: the old one or
the new one. A version that fails to load leaves the old one serving, logs a warning and
alerts once (kind `serve_load_failed`). Only lakebox's own specs' models are served: their
names are the only ones asked of the store.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakebox.log import get_logger
from lakebox.ml import history, registry, tracking
from lakebox.ml.serving.inputs import Column, schema_of

if TYPE_CHECKING:
    from lakebox.ml.spec import MLModelSpec
    from lakebox.settings import Settings


CANARY_TAG = "lakebox.canary_percent"  # on the registered model: `lakebox ml canary` sets it
LOOKUP_SECONDS = 60.0  # how often a model's warehouse lookup (raw inputs) is read again


class NotFound(LookupError):
    """An unknown model, alias or version (a 404)."""


@dataclass(frozen=True)
class Loaded:
    """One registered version, ready to score."""

    spec: MLModelSpec
    version: str  # MLflow's version number
    label: str  # as lakebox's tables name it ("3", or "3.g2" in a later generation)
    model: Any
    schema: tuple[Column, ...]


@dataclass(frozen=True)
class Served:
    """What the server knows of one model at one moment (replaced whole, never mutated)."""

    spec: MLModelSpec
    aliases: dict[str, Loaded] = field(default_factory=dict)
    versions: tuple[str, ...] = ()
    generation: int = 1
    canary_percent: float = 0.0  # share of default requests the challenger answers (`lakebox ml canary`)
    lookup: Any = None  # spec.raw_inputs.prepare of what lookup_sql read (None: not read yet, or no raw inputs)
    lookup_read_at: float = 0.0  # time.monotonic() of that read
    lookup_error: str | None = None  # why the last read failed (requests needing it get a 503 saying so)


def single_threaded(model: Any) -> Any:
    """Set every `n_jobs` of the model to 1: a thread pool per request cost more than the
    scoring of a few rows (the server's concurrency is its requests)."""
    params = getattr(model, "get_params", None)
    if params is not None:
        jobs = {k: 1 for k in params(deep=True) if k == "n_jobs" or k.endswith("__n_jobs")}
        if jobs:
            model.set_params(**jobs)
    return model


class Catalog:
    def __init__(self, settings: Settings, specs: list[MLModelSpec], generations: dict[str, int] | None = None,
                 poll_seconds: float = 1.0) -> None:
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._generations = generations or {}
        self._served: dict[str, Served] = {s.name: Served(s, generation=self._generations.get(s.name, 1))
                                           for s in specs}
        self._by_version: dict[tuple[str, str], Loaded] = {}
        self._lock = threading.Lock()  # one load at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: set[tuple[str, str]] = set()

    # reading (request path): plain dict lookups on objects never mutated
    def models(self) -> list[Served]:
        return list(self._served.values())

    def model(self, name: str) -> Served:
        served = self._served.get(name)
        if served is None:
            raise NotFound(f"no model {name!r}; served: {', '.join(sorted(self._served)) or 'none'}")
        return served

    def alias(self, name: str, alias: str) -> Loaded:
        served = self.model(name)
        loaded = served.aliases.get(alias)
        if loaded is None:
            raise NotFound(f"model {name} has no alias {alias!r}; its aliases: "
                           f"{', '.join(sorted(served.aliases)) or 'none (train it first)'}")
        return loaded

    def version(self, name: str, label: str) -> Loaded:
        """A version by number (or label N.gG); loaded on first use and kept."""
        served = self.model(name)
        version = history.mlflow_version(label)
        if not version.isdigit() or version not in served.versions:
            raise NotFound(f"model {name} has no version {label!r}; its versions: "
                           f"{', '.join(served.versions) or 'none'}")
        found = self._by_version.get((name, version))
        return found if found is not None else self._load(served, version)

    # the registry side: the poll thread (and `refresh` in tests)
    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="lakebox-serve-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def refresh(self) -> None:
        """Look at every model's aliases; load what moved, then swap it in."""
        try:
            client = tracking.connect(self.settings)
        except Exception as exc:  # noqa: BLE001 - the store down: keep serving what is loaded
            get_logger().warning("serve: registry not reachable; serving what is loaded", error=str(exc)[:300])
            return
        for name, served in list(self._served.items()):
            try:
                self._refresh_one(client, served)
            except Exception as exc:  # noqa: BLE001 - one model's trouble never stops the others
                get_logger().warning("serve: could not look at the registry", model=name, error=str(exc)[:300])

    def _refresh_one(self, client: Any, served: Served) -> None:
        from mlflow.exceptions import MlflowException

        name = served.spec.name
        try:
            registered = client.get_registered_model(name)
            aliases = {a: str(v) for a, v in registered.aliases.items()}
            canary = _percent((registered.tags or {}).get(CANARY_TAG))
            versions = tuple(sorted((str(v.version) for v in client.search_model_versions(f"name = '{name}'")),
                                    key=int))
        except MlflowException:
            aliases, versions, canary = {}, (), 0.0
        loaded: dict[str, Loaded] = {}
        for alias, version in aliases.items():
            current = served.aliases.get(alias)
            if current is not None and current.version == version:
                loaded[alias] = current
                continue
            try:
                loaded[alias] = self._by_version.get((name, version)) or self._load(served, version)
            except Exception as exc:  # noqa: BLE001 - a version that cannot load: the old one keeps serving
                self._load_failed(served, alias, version, current, exc)
                if current is not None:
                    loaded[alias] = current
        for alias, now in loaded.items():
            before = served.aliases.get(alias)
            if before is None or before.version != now.version:
                get_logger().info("serve: alias now served", model=name, alias=alias, version=now.label,
                                  before=before.label if before else None)
        lookup, read_at, error = self._lookup(served)
        self._served[name] = Served(served.spec, loaded, versions, served.generation, canary,
                                    lookup, read_at, error)  # the swap

    def _lookup(self, served: Served) -> tuple[Any, float, str | None]:
        """The model's warehouse lookup, read again once LOOKUP_SECONDS old; the warehouse is
        opened for the read alone (a held DuckDB file would lock pipeline runs out), as the
        online log's writer opens it (read-only would refuse a file this process has open)."""
        spec = served.spec
        if spec.raw_inputs is None or (served.lookup is not None
                                       and time.monotonic() - served.lookup_read_at < LOOKUP_SECONDS):
            return served.lookup, served.lookup_read_at, served.lookup_error
        from lakebox.warehouse import open_warehouse

        try:
            with open_warehouse(self.settings) as warehouse:
                table = warehouse.query_arrow(spec.raw_inputs.lookup_sql)
            prepared = spec.raw_inputs.prepare(table)
        except Exception as exc:  # noqa: BLE001 - the warehouse busy or not built: keep what was read
            error = (f"model {spec.name}: its warehouse lookup could not be read ({type(exc).__name__}: "
                     f"{' '.join(str(exc).split())[:200]}); run `lakebox run {spec.pipeline}` to build its tables")
            get_logger().warning("serve: lookup not read", model=spec.name, error=error)
            return served.lookup, served.lookup_read_at, error if served.lookup is None else None
        get_logger().info("serve: lookup read", model=spec.name, rows=table.num_rows)
        return prepared, time.monotonic(), None

    def _load(self, served: Served, version: str) -> Loaded:
        import mlflow.models

        name = served.spec.name
        with self._lock:
            found = self._by_version.get((name, version))
            if found is not None:
                return found
            label = history.History(name, served.generation, None).label(version)
            model = registry.load_version(name, version, label, tracking.store_name(self.settings))
            signature = mlflow.models.get_model_info(f"models:/{name}/{version}").signature
            loaded = Loaded(served.spec, version, label, single_threaded(model), input_schema(served.spec, signature))
            self._by_version[(name, version)] = loaded
            return loaded

    def _load_failed(self, served: Served, alias: str, version: str, current: Loaded | None,
                     exc: BaseException) -> None:
        from lakebox.observability import send_alert

        name = served.spec.name
        keeping = f"v{current.label} keeps serving" if current else "nothing served for it until it loads"
        text = (f"model {name}: alias {alias} moved to v{version}, which could not be loaded "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); {keeping}")
        if (name, version) not in self._failed:
            self._failed.add((name, version))
            get_logger().warning("serve: version could not be loaded", model=name, alias=alias, version=version,
                                 kept=current.label if current else None, error=str(exc)[:300])
            send_alert(self.settings, f"{name}:serve_load_failed:{version}", "serve_load_failed",
                       f":warning: lakebox {text}", {"model": name, "alias": alias, "version": version})


def input_schema(spec: MLModelSpec, signature: Any) -> tuple[Column, ...]:
    """The columns a caller sends: the raw ones the model declares, else its signature's features."""
    if spec.raw_inputs is not None:
        return tuple(Column(name, kind) for name, kind in spec.raw_inputs.columns)
    return schema_of(signature, spec.features)


def _percent(text: str | None) -> float:
    try:
        return min(100.0, max(0.0, float(text))) if text else 0.0
    except ValueError:
        return 0.0
