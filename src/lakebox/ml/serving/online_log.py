"""`ml.online_predictions`: what each served version answered, written in batches off the
request path.

A request adds its rows to a buffer (no I/O), and the rows the challenger is to shadow to
another; a thread, every FLUSH_SECONDS, scores the shadowed rows of all those requests with
the challenger in one call per version (one call for many requests costs little more than
one for a single row, and keeps the scoring off the requests' way), then writes the buffer
as one Arrow append, opening the warehouse only for that write (a server
holding a DuckDB file open would lock pipeline runs out). A write that fails keeps the rows
for the next attempt, up to MAX_BUFFERED rows (the oldest go first), with a warning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakebox.log import get_logger

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.settings import Settings

TABLE = "ml.online_predictions"
FLUSH_SECONDS = 1.0
MAX_BUFFERED = 1_000_000


def rows(request_id: str, model: str, version: str, role: str, predicted: pa.Array, latency_ms: float) -> pa.Table:
    """One row per scored input row: request id, its row number, model, version, role
    (champion, challenger, canary, version), prediction (as text), latency, when."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakebox.warehouse.ops import utcnow

    n = len(predicted)
    return pa.table({
        "request_id": pa.repeat(pa.scalar(request_id, pa.string()), n), "row": pa.array(range(n), pa.int64()),
        "model_name": pa.repeat(pa.scalar(model, pa.string()), n),
        "model_version": pa.repeat(pa.scalar(version, pa.string()), n),
        "role": pa.repeat(pa.scalar(role, pa.string()), n), "prediction": pc.cast(predicted, pa.string()),
        "latency_ms": pa.repeat(pa.scalar(latency_ms, pa.float64()), n),
        "predicted_at": pa.repeat(pa.scalar(utcnow(), pa.timestamp("us")), n),
    })


def warehouse_writer(settings: Settings) -> Callable[[pa.Table], None]:
    """Append to ml.online_predictions, the warehouse opened for this write only."""
    def write(table: pa.Table) -> None:
        from lakebox.ml import tables
        from lakebox.warehouse import open_warehouse

        with open_warehouse(settings) as warehouse:
            tables.ensure_like(warehouse, TABLE, table.schema)
            tables.append(warehouse, TABLE, table)

    return write


class OnlineLog:
    def __init__(self, write: Callable[[pa.Table], None], flush_seconds: float = FLUSH_SECONDS) -> None:
        self._write = write
        self._flush_seconds = flush_seconds
        self._buffer: list[pa.Table] = []
        self._shadows: list[tuple[str, Any, pa.Table]] = []  # (request id, challenger's Loaded, feature rows)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lakebox-online-log", daemon=True)
        self.written = 0

    def start(self) -> OnlineLog:
        self._thread.start()
        return self

    def add(self, table: Any) -> None:
        with self._lock:
            self._buffer.append(table)

    def shadow(self, request_id: str, challenger: Any, rows: pa.Table) -> None:
        """Score `rows` with `challenger` (a catalog Loaded) at the next flush; role `challenger`."""
        with self._lock:
            self._shadows.append((request_id, challenger, rows))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        with self._lock:
            pending, self._buffer = self._buffer, []
            shadows, self._shadows = self._shadows, []
        if shadows:
            pending += score_shadows(shadows)
        if not pending:
            return
        table = pa.concat_tables(pending)
        t0 = time.perf_counter()
        try:
            self._write(table)
        except Exception as exc:  # noqa: BLE001 - a busy or absent warehouse: keep the rows, try again
            get_logger().warning("serve: online predictions not written yet", rows=table.num_rows,
                                 error=f"{type(exc).__name__}: {exc}"[:300])
            with self._lock:
                self._buffer.insert(0, table.slice(max(0, table.num_rows - MAX_BUFFERED)))
            return
        self.written += table.num_rows
        get_logger().debug("serve: online predictions written", rows=table.num_rows,
                           seconds=round(time.perf_counter() - t0, 3))


def score_shadows(shadows: list[tuple[str, Any, pa.Table]]) -> list[pa.Table]:
    """Each challenger version's queued rows scored in one call, the answers split back by
    request; a request's latency is its share of that call. A failure is the challenger's
    own: a warning, nothing kept."""
    import numpy as np
    import pyarrow as pa

    from lakebox.ml.predict import score_features

    by_version: dict[int, list[tuple[str, Any, pa.Table]]] = {}
    for item in shadows:
        by_version.setdefault(id(item[1]), []).append(item)
    out = []
    for queued in by_version.values():
        loaded = queued[0][1]
        t0 = time.perf_counter()
        try:
            batch = pa.concat_tables([q[2] for q in queued], promote_options="permissive")
            predicted, _ = score_features(loaded.spec, loaded.model, batch)
        except Exception as exc:  # noqa: BLE001 - the challenger's failure is its own, never the caller's
            get_logger().warning("serve: shadow scoring failed", model=loaded.spec.name, version=loaded.label,
                                 requests=len(queued), error=str(exc)[:300])
            continue
        ms = (time.perf_counter() - t0) * 1000
        sizes = np.array([q[2].num_rows for q in queued])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        for (request_id, _, _), start, n in zip(queued, starts, sizes, strict=True):
            out.append(rows(request_id, loaded.spec.name, loaded.label, "challenger",
                            predicted.slice(int(start), int(n)), ms * n / batch.num_rows))
    return out
