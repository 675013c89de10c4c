"""One error tree, so callers catch by meaning and retries never parse message text.

    LakeboxError
    ├── ConfigError                 bad or missing settings (terminal)
    ├── SourceError                 a source misbehaved
    │   ├── TransientSourceError    429, 5xx, timeouts: worth retrying (transient)
    │   └── SourceFailedError       retries exhausted or a 4xx (terminal)
    ├── LakeError                   the raw lake refused or failed
    │   ├── RawObjectExistsError    write-once: the key holds other bytes (terminal)
    │   └── LakeIntegrityError      a landed object is missing or changed (terminal)
    ├── WarehouseError              the warehouse refused or is unreachable (terminal)
    ├── QualityGateFailed           a batch or file broke its contract (terminal)
    ├── TransformError              dbt failed (terminal)
    └── BusyError                   the pipeline is already running elsewhere (transient)

`Transient` and `Terminal` are markers the retry policy reads. A run stopped by SIGTERM or
Ctrl-C raises `lakebox.interrupts.RunInterrupted`, a KeyboardInterrupt, outside this tree.
"""

from __future__ import annotations


class Transient:
    """Marker: the same call may succeed later."""


class Terminal:
    """Marker: retrying will not help; a person must act."""


class LakeboxError(Exception):
    """Root of every error lakebox raises on purpose."""

    exit_code = 1


class ConfigError(LakeboxError, Terminal):
    exit_code = 2


class SourceError(LakeboxError):
    pass


class TransientSourceError(SourceError, Transient):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceFailedError(SourceError, Terminal):
    pass


class LakeError(LakeboxError):
    pass


class RawObjectExistsError(LakeError, Terminal):
    pass


class LakeIntegrityError(LakeError, Terminal):
    pass


class WarehouseError(LakeboxError, Terminal):
    pass


class QualityGateFailed(LakeboxError, Terminal):
    pass


class TransformError(LakeboxError, Terminal):
    pass


class BusyError(LakeboxError, Transient):
    exit_code = 3
