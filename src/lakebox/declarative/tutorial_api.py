"""An air-quality API shaped like the public ones (OpenAQ's), for docs/pipelines.md's tutorial.

`lakebox tutorial-api` serves it on 127.0.0.1 so the tutorial runs offline:
`GET /v3/measurements?page=1&limit=100&since=2024-01-01T00:00:00Z` answers
`{"meta": {"found": N, "pages": P, "page": 1}, "results": [...]}` (readings at or after `since`), newest last, behind a
bearer token when one is given. The readings are synthetic with real signal (a daily cycle,
weekdays dirtier than weekends, each hour close to the last), so the tutorial's forecast can
beat its last-value baseline. Field names are as public APIs send them (`Wind Speed`).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np

CITIES = ("Lisbon", "Porto", "Madrid")
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DAYS = 60
MAX_LIMIT = 1000


def readings(days: int = DAYS, seed: int = 7) -> list[dict[str, Any]]:
    """Hourly PM2.5 per city, in time order: the same list for the same arguments."""
    rng = np.random.default_rng(seed)
    hours = days * 24
    out: list[dict[str, Any]] = []
    for c, city in enumerate(CITIES):
        level = 12.0 + 4 * c
        wind = rng.gamma(2.0, 2.0, hours)
        pm = np.empty(hours)
        last = level
        for h in range(hours):
            at = START + dt.timedelta(hours=h)
            cycle = 6 * math.sin((at.hour - 8) / 24 * 2 * math.pi) + (4 if at.weekday() < 5 else -3)
            last = 0.6 * last + 0.4 * (level + cycle) - 0.8 * wind[h] + rng.normal(0, 1.5)
            pm[h] = max(last, 0.5)
        out += [{"city": city, "measured_at": (START + dt.timedelta(hours=h)).isoformat(),
                 "pm25": round(float(pm[h]), 2), "Wind Speed": round(float(wind[h]), 2)} for h in range(hours)]
    return sorted(out, key=lambda r: (r["measured_at"], r["city"]))


def create_app(token: str | None = None, days: int = DAYS) -> Any:
    from fastapi import FastAPI, Header, HTTPException, Query

    data = readings(days)
    app = FastAPI(title="air-quality stand-in", docs_url=None, redoc_url=None)

    @app.get("/v3/measurements")
    def measurements(page: int = Query(1, ge=1), limit: int = Query(100, ge=1, le=MAX_LIMIT),
                     since: str | None = None, authorization: str | None = Header(None)) -> dict[str, Any]:
        if token and authorization != f"Bearer {token}":
            raise HTTPException(401, "a bearer token is required")
        chosen = [r for r in data if since is None or r["measured_at"] >= _iso(since)]  # inclusive, as OpenAQ's date_from
        pages = max(1, math.ceil(len(chosen) / limit))
        return {"meta": {"found": len(chosen), "pages": pages, "page": page, "limit": limit},
                "results": chosen[(page - 1) * limit: page * limit]}

    return app


def _iso(value: str) -> str:
    """`since` as the readings write times, so strings compare as times."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC).isoformat()
