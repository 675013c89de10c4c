"""The lake: write-once raw zone, quarantine and snapshots over any fsspec filesystem."""

from lakebox.lake.store import BatchManifest, Lake, batch_id_for

__all__ = ["BatchManifest", "Lake", "batch_id_for"]
