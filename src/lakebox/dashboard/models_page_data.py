"""The queries behind the Models page (dashboard/models_page.py): alias history from
ml.model_decisions, shadow agreement and canary split from ml.online_predictions, live
quality from ml.model_performance where it exists. Every query is read-only and cached
(lakebox.dashboard.data.fetch); shares are counted in SQL, not row by row here."""

from __future__ import annotations

import pandas as pd

from lakebox.dashboard.data import WarehouseRef, fetch, has_rows

DECISIONS = "ml.model_decisions"
ONLINE = "ml.online_predictions"
PERFORMANCE = "ml.model_performance"


def models(wh: WarehouseRef) -> list[str]:
    """Every model with a decision recorded, or answers served."""
    names: set[str] = set()
    if has_rows(wh, DECISIONS):
        names |= set(fetch(wh, f"select distinct model_name from {DECISIONS}")["model_name"])
    if has_rows(wh, ONLINE):
        names |= set(fetch(wh, f"select distinct model_name from {ONLINE}")["model_name"])
    return sorted(names)


def decisions(wh: WarehouseRef, model: str) -> pd.DataFrame:
    """Every decision on `model`, oldest first: the alias each version got (or lost), by whom, why."""
    if not has_rows(wh, DECISIONS):
        return pd.DataFrame(columns=["decided_at", "version", "decision", "metric", "value", "reason"])
    columns = set(fetch(wh, f"select * from {DECISIONS} limit 0").columns)
    by = "decided_by" if "decided_by" in columns else "cast(null as varchar) as decided_by"
    before = "from_version" if "from_version" in columns else "cast(null as varchar) as from_version"
    return fetch(wh, f"select decided_at, version, {before}, decision, {by}, metric, value, reason "
                     f"from {DECISIONS} where model_name = ? order by decided_at", (model,))


def holdout(wh: WarehouseRef, model: str, version: str) -> tuple[str, float] | None:
    """The metric and holdout figure `version` was registered with (its training run's row)."""
    if not has_rows(wh, DECISIONS):
        return None
    found = fetch(wh, f"select metric, value from {DECISIONS} where model_name = ? and version = ? "
                      "and run_id is not null and value is not null order by decided_at limit 1", (model, version))
    return None if found.empty else (str(found["metric"].iloc[0]), float(found["value"].iloc[0]))


PAIRS = f"""
    from {ONLINE} as c join {ONLINE} as s
      on s.request_id = c.request_id and s.row = c.row and s.model_name = c.model_name
    where c.model_name = ? and c.role = 'champion' and s.role = 'challenger'"""
SAMPLE_PAIRS = 20_000  # the newest pairs a regressor's difference is measured on


def shadow(wh: WarehouseRef, model: str) -> pd.DataFrame:
    """Per day and challenger version: the rows both answered (same request id and row), and
    how many answers are the same."""
    if not has_rows(wh, ONLINE):
        return pd.DataFrame(columns=["day", "challenger", "champion", "rows", "agree"])
    return fetch(wh, f"""
        select cast(s.predicted_at as date) as day, s.model_version as challenger, c.model_version as champion,
               count(*) as rows, sum(case when c.prediction = s.prediction then 1 else 0 end) as agree
        {PAIRS}
        group by 1, 2, 3 order by 1, 2""", (model,))


def shadow_difference(wh: WarehouseRef, model: str) -> float | None:
    """A regressor's mean absolute difference, champion against challenger, on the newest
    pairs (None when the answers are not numbers: a classifier's)."""
    if not has_rows(wh, ONLINE):
        return None
    pairs = fetch(wh, f"select c.prediction as said, s.prediction as shadow_said {PAIRS} "
                      f"order by s.predicted_at desc limit {SAMPLE_PAIRS}", (model,))
    said = pd.to_numeric(pairs["said"], errors="coerce")
    other = pd.to_numeric(pairs["shadow_said"], errors="coerce")
    if pairs.empty or said.isna().all() or other.isna().all():
        return None
    return float((said - other).abs().mean())


def canary(wh: WarehouseRef, model: str) -> pd.DataFrame:
    """Per day, the requests each role answered (champion, canary; a version named in the path)."""
    if not has_rows(wh, ONLINE):
        return pd.DataFrame(columns=["day", "role", "model_version", "requests"])
    return fetch(wh, f"""
        select cast(predicted_at as date) as day, role, model_version, count(distinct request_id) as requests
        from {ONLINE} where model_name = ? and role <> 'challenger'
        group by 1, 2, 3 order by 1, 2, 3""", (model,))


def performance(wh: WarehouseRef, model: str) -> pd.DataFrame | None:
    """ml.model_performance's rows for `model` (None: the table is not there, no live labels yet)."""
    if not has_rows(wh, PERFORMANCE):
        return None
    found = fetch(wh, f"select * from {PERFORMANCE} where model_name = ?", (model,))
    return None if found.empty else found
