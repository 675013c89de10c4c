"""Deterministic daily CSV drops for the retail pipeline, as 150 stores would send them.

Patterns a dashboard should find: weekends sell more than weekdays (except small
"express" stores, busiest on weekdays), December peaks and February dips, regions and
formats differ, promotions lift sales by roughly 1.5 × their discount, and a stockout
cuts a category's sales (and transactions) to zero for that store and day.

Everything is drawn with numpy over whole (store, category, day) arrays and each file is
written from an Arrow slice: no Python loop per row. The same (seed, start) always writes
the same bytes. Stores depend on the seed only, so `stores.csv` does not change with dates.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lakebox.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

CATEGORIES = ("grocery", "fresh", "household", "health_beauty", "apparel", "electronics")
REGIONS = ("North", "South", "East", "West", "Central")
FORMATS = ("hypermarket", "supermarket", "express")

_CATEGORY_SHARE = np.array([0.32, 0.22, 0.14, 0.10, 0.12, 0.10])
_BASKET = np.array([24.0, 17.0, 29.0, 21.0, 46.0, 115.0])  # average ticket per category
_UNIT_PRICE = np.array([4.0, 3.0, 6.0, 9.0, 25.0, 180.0])
_FORMAT_SCALE = np.array([2.6, 1.0, 0.32])
_FORMAT_MIX = np.array([0.2, 0.5, 0.3])
_REGION_SCALE = np.array([1.0, 0.88, 1.12, 1.05, 0.94])
# Monday..Sunday; express stores serve commuters, so their weekends are quiet.
_WEEKDAY = np.array([
    [0.90, 0.88, 0.93, 0.97, 1.10, 1.38, 1.24],
    [0.90, 0.88, 0.93, 0.97, 1.10, 1.38, 1.24],
    [1.06, 1.05, 1.05, 1.06, 1.04, 0.84, 0.76],
])
# January..December; apparel and electronics swing twice as hard.
_MONTH = np.array([0.92, 0.86, 0.95, 0.99, 1.02, 1.00, 0.98, 1.00, 0.97, 1.03, 1.12, 1.34])
_SEASONAL_AMPLITUDE = np.array([0.6, 0.5, 0.7, 0.8, 1.6, 2.0])
_DAILY_SALES_BASE = 11_000.0  # a typical supermarket's day, all categories
_STOCKOUT_P = np.array([0.008, 0.030, 0.010, 0.012, 0.015, 0.020])  # per store/category/day
_DISCOUNTS = np.array([0.10, 0.15, 0.20, 0.25, 0.30])
_PROMO_LIFT_PER_DISCOUNT = 1.5
_CITIES = {
    "North": ("Aberdeen", "Inverness", "Dundee", "Perth", "Stirling", "Elgin"),
    "South": ("Brighton", "Exeter", "Plymouth", "Southampton", "Bournemouth", "Truro"),
    "East": ("Norwich", "Ipswich", "Cambridge", "Colchester", "Lincoln", "Hull"),
    "West": ("Bristol", "Cardiff", "Swansea", "Gloucester", "Bath", "Hereford"),
    "Central": ("Leicester", "Derby", "Coventry", "Nottingham", "Stoke", "Worcester"),
}
_FORMAT_NAME = {"hypermarket": "Hyper", "supermarket": "Market", "express": "Express"}


@dataclass(frozen=True)
class Drop:
    """Generated tables, before they are written as files (tests read these directly)."""

    stores: pa.Table
    sales: pa.Table
    inventory: pa.Table
    promotions: pa.Table
    days: tuple[dt.date, ...]


def default_start(months: int, today: dt.date | None = None) -> dt.date:
    """The first day of the `months` months ending yesterday, so no drop is in the future."""
    end = (today or dt.date.today()) - dt.timedelta(days=1)
    return _add_months(end, -months) + dt.timedelta(days=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def build_drop(stores: int, months: int, seed: int, start: dt.date) -> Drop:
    """All four tables for `stores` stores over `months` months from `start`."""
    import pyarrow as pa

    if stores < 1 or months < 1:
        raise ConfigError("retail-generate needs at least 1 store and 1 month")
    n_days = (_add_months(start, months) - start).days
    days = tuple(start + dt.timedelta(days=i) for i in range(n_days))
    n_cat = len(CATEGORIES)

    rng_store = np.random.default_rng([seed, 1])
    region = rng_store.integers(0, len(REGIONS), stores)
    fmt = rng_store.choice(len(FORMATS), stores, p=_FORMAT_MIX)
    city = rng_store.integers(0, 6, stores)
    opened = np.datetime64("2004-01-01") + rng_store.integers(0, 18 * 365, stores).astype("timedelta64[D]")
    store_level = rng_store.lognormal(0.0, 0.18, stores)
    store_ids = _ids("S", np.arange(1, stores + 1), 3)
    names = [f"{_CITIES[REGIONS[r]][c]} {_FORMAT_NAME[FORMATS[f]]} {i + 1:03d}"
             for i, (r, c, f) in enumerate(zip(region, city, fmt, strict=True))]
    stores_table = pa.table({
        "store_id": store_ids,
        "store_name": names,
        "region": np.array(REGIONS)[region],
        "format": np.array(FORMATS)[fmt],
        "opened_on": opened.astype("datetime64[D]"),
    })

    # Shape (store, category, day) throughout.
    rng = np.random.default_rng([seed, 2, start.toordinal()])
    dates = np.array(days, dtype="datetime64[D]")
    weekday = np.array([d.weekday() for d in days])
    month = np.array([d.month for d in days]) - 1
    season = 1.0 + (_MONTH[month][None, :] - 1.0) * _SEASONAL_AMPLITUDE[:, None]  # (cat, day)
    level = (_DAILY_SALES_BASE * _FORMAT_SCALE[fmt] * _REGION_SCALE[region] * store_level)[:, None, None]
    mix = _CATEGORY_SHARE[None, :, None] * rng.lognormal(0.0, 0.12, (stores, n_cat, 1))
    expected = level * mix * season[None, :, :] * _WEEKDAY[fmt][:, weekday][:, None, :]

    promo_on, promo_discount, promotions = _promotions(rng, stores, n_days)
    lift = 1.0 + promo_discount * _PROMO_LIFT_PER_DISCOUNT
    p_stockout = _STOCKOUT_P[None, :, None] * np.where(fmt == 2, 1.8, 1.0)[:, None, None]
    stockout = rng.random((stores, n_cat, n_days)) < p_stockout
    noise = rng.lognormal(0.0, 0.10, (stores, n_cat, n_days))
    sales = np.where(stockout, 0.0, np.round(expected * lift * noise, 2))
    basket = _BASKET[None, :, None] * (1.0 - 0.3 * promo_discount) * rng.lognormal(0.0, 0.05, sales.shape)
    transactions = np.where(stockout, 0, np.maximum(1, np.rint(sales / basket))).astype(np.int64)
    markdown = np.round(rng.uniform(0.0, 0.04, sales.shape) * (rng.random(sales.shape) < 0.2), 3)
    discount = np.where(promo_on, promo_discount, markdown)
    cover_days = rng.uniform(2.0, 12.0, sales.shape)
    on_hand = np.where(stockout, 0, np.rint(expected / _UNIT_PRICE[None, :, None] * cover_days)).astype(np.int64)

    # Flatten day-major so each day's rows are one contiguous slice.
    def flat(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, 2, 0)).reshape(-1)

    grid = (n_days, stores, n_cat)
    day_col = np.broadcast_to(dates[:, None, None], grid).reshape(-1)
    store_col = np.broadcast_to(store_ids[None, :, None], grid).reshape(-1)
    cat_col = np.broadcast_to(np.array(CATEGORIES)[None, None, :], grid).reshape(-1)
    sales_table = pa.table({
        "date": day_col,
        "store_id": store_col,
        "category": cat_col,
        "total_sales": flat(sales),
        "transaction_count": flat(transactions),
        "discount_pct": flat(discount),
    })
    inventory_table = pa.table({
        "date": day_col,
        "store_id": store_col,
        "category": cat_col,
        "on_hand_units": flat(on_hand),
        "stockout": flat(stockout),
    })
    p_store, p_cat, p_start, p_end, p_disc, p_seq = promotions
    promo_table = pa.table({
        "promo_id": _ids("PR", p_store + 1, 3) + _ids("", p_cat, 1) + _ids("", p_seq, 2),
        "store_id": store_ids[p_store],
        "category": np.array(CATEGORIES)[p_cat],
        "start_date": dates[0] + p_start.astype("timedelta64[D]"),
        "end_date": dates[0] + p_end.astype("timedelta64[D]"),
        "discount_pct": p_disc,
    }).sort_by([("start_date", "ascending"), ("store_id", "ascending"), ("category", "ascending")])
    return Drop(stores_table, sales_table, inventory_table, promo_table, days)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """'S' + 7 → 'S007' for a whole array at once."""
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers).astype(str), width))


def _promotions(rng: np.random.Generator, stores: int, n_days: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Non-overlapping promotions per (store, category): gaps and lengths drawn in bulk."""
    n_cat = len(CATEGORIES)
    slots = n_days // 12 + 2
    gaps = rng.integers(8, 35, (stores, n_cat, slots))
    lengths = rng.integers(3, 11, (stores, n_cat, slots))
    starts = np.cumsum(gaps + np.concatenate([np.zeros((stores, n_cat, 1), int), lengths[..., :-1]], axis=2), axis=2)
    starts -= rng.integers(0, 20, (stores, n_cat, 1))  # stagger, so not every promo starts on day ~8
    ends = starts + lengths - 1
    discounts = _DISCOUNTS[rng.integers(0, len(_DISCOUNTS), (stores, n_cat, slots))]
    keep = (starts >= 0) & (starts < n_days)
    day = np.arange(n_days)
    grid = day[None, None, None, :]
    on = (grid >= starts[..., None]) & (grid <= ends[..., None]) & keep[..., None]
    promo_on = np.asarray(on.any(axis=2))  # numpy types a reduction as scalar-or-array
    promo_discount = (on * discounts[..., None]).sum(axis=2)
    s, c, k = np.nonzero(keep)
    seq = np.cumsum(keep, axis=2)[s, c, k]
    return promo_on, promo_discount, (s, c, starts[s, c, k], ends[s, c, k], discounts[s, c, k], seq)


def _csv(table: pa.Table) -> bytes:
    import pyarrow.csv as pcsv

    buffer = io.BytesIO()
    buffer.write((",".join(table.column_names) + "\n").encode())  # Arrow would quote the header
    pcsv.write_csv(table, buffer, pcsv.WriteOptions(include_header=False, quoting_style="none"))
    return buffer.getvalue()


def drop_files(drop: Drop) -> dict[str, bytes]:
    """File name → bytes, in the order a store system would send them."""
    files = {"stores.csv": _csv(drop.stores)}
    per_day = len(drop.sales) // len(drop.days)
    promo_days = drop.promotions.column("start_date").to_numpy()
    for i, day in enumerate(drop.days):
        stamp = day.isoformat()
        files[f"daily_sales_{stamp}.csv"] = _csv(drop.sales.slice(i * per_day, per_day))
        files[f"inventory_{stamp}.csv"] = _csv(drop.inventory.slice(i * per_day, per_day))
        lo, hi = np.searchsorted(promo_days, np.datetime64(day, "D"), side="left"), \
            np.searchsorted(promo_days, np.datetime64(day, "D"), side="right")
        if hi > lo:  # a day without new promotions sends no promotions file
            files[f"promotions_{stamp}.csv"] = _csv(drop.promotions.slice(int(lo), int(hi - lo)))
    return files


def generate_drops(out: str, stores: int, months: int, seed: int, start: str | None) -> str:
    """Write the drops into `out` (a folder or s3:// URL); returns a summary to print."""
    import os

    from lakebox.lake.remote import fs_for_url

    t0 = time.perf_counter()
    try:
        first = dt.date.fromisoformat(start) if start else default_start(months)
    except ValueError as exc:
        raise ConfigError(f"--start {start!r} is not a date (YYYY-MM-DD)") from exc
    drop = build_drop(stores, months, seed, first)
    files = drop_files(drop)
    fs, root = fs_for_url(out, os.environ)
    fs.makedirs(root, exist_ok=True)
    for name, data in files.items():
        fs.pipe_file(f"{root.rstrip('/')}/{name}", data)
    size = sum(len(d) for d in files.values())
    return (
        f"Wrote {len(files)} files ({size / 1e6:.1f} MB) to {out}: stores.csv for {stores} stores, then "
        f"daily_sales, inventory and promotions files for {len(drop.days)} days from {drop.days[0]} to "
        f"{drop.days[-1]} ({drop.sales.num_rows} sales rows, {drop.promotions.num_rows} promotions), "
        f"seed {seed}, in {time.perf_counter() - t0:.2f} s. Load them with: lakebox run retail"
    )
