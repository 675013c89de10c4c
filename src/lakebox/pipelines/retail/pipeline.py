"""retail's landing and quality gate alone: checking drops without rebuilding marts (tests)."""

from __future__ import annotations

from lakebox.pipelines import get_spec

INGEST_ONLY = get_spec("retail").pipeline(stages=("land", "load"))
