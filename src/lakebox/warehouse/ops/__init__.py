"""The ops.* tables, one module each owning its SQL:

    audit         ops.pipeline_runs, ops.stage_runs, ops.dq_results
    ledger        ops.batches (the ingestion ledger)
    source_state  ops.source_state (cursors and watermarks)
    quarantine    ops.quarantine (open and settled quarantined items)

The names below are the ones the rest of lakebox uses.
"""

from lakebox.warehouse.ops import audit, ledger, quarantine, source_state
from lakebox.warehouse.ops._rows import utcnow
from lakebox.warehouse.ops.audit import (
    end_run,
    recent_runs,
    record_dq_results,
    record_dq_results_many,
    record_stage,
    start_run,
)
from lakebox.warehouse.ops.ledger import (
    LANDED,
    LOADED,
    LOST,
    QUARANTINED,
    SUPERSEDED,
    mark_batch,
    mark_batches,
    mark_loaded,
    pending_batches,
    record_landed,
    record_landed_many,
)
from lakebox.warehouse.ops.source_state import get_state, set_state

DDL = audit.DDL + ledger.DDL + source_state.DDL + quarantine.DDL

__all__ = [
    "DDL", "LANDED", "LOADED", "LOST", "QUARANTINED", "SUPERSEDED", "audit", "end_run", "get_state", "ledger",
    "mark_batch", "mark_batches", "mark_loaded", "pending_batches", "quarantine", "record_dq_results", "record_dq_results_many",
    "record_landed", "record_landed_many", "record_stage", "recent_runs", "set_state", "source_state",
    "start_run", "utcnow",
]
