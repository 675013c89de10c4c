"""The retail drops' contracts, one per file kind, declared once: checks, raw DDL and docs.

Every file is read as text (all columns varchar, the header checked separately and
exactly), so a drifted header or a retyped value is reported, never silently coerced.
Raw rows carry the file they came from, so staging can keep the newest version of each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakebox.quality import Column, Contract

SOURCE = "retail"
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
_LINEAGE = (
    ("batch_id", "varchar"),
    ("ingested_at", "timestamp"),
    ("lake_path", "varchar"),
    ("file_name", "varchar"),
)

STORES = Contract(
    source=SOURCE,
    table="raw.retail_stores",
    description="`stores.csv`: the store master, sent once (a corrected file replaces it).",
    columns=(
        Column("store_id", "string", nullable=False, pattern=r"S\d{3,}"),
        Column("store_name", "string", nullable=False),
        Column("region", "string", nullable=False),
        Column("format", "string", nullable=False),
        Column("opened_on", "date", nullable=False, pattern=DATE_PATTERN),
    ),
    unique_key=("store_id",),
    lineage=_LINEAGE,
)

DAILY_SALES = Contract(
    source=SOURCE,
    table="raw.retail_daily_sales",
    description="`daily_sales_YYYY-MM-DD.csv`: one row per store and category for that day.",
    columns=(
        Column("date", "date", nullable=False, pattern=DATE_PATTERN),
        Column("store_id", "string", nullable=False),
        Column("category", "string", nullable=False),
        Column("total_sales", "double", nullable=False, min=0),
        Column("transaction_count", "integer", nullable=False, min=0, pattern=r"\d+"),
        Column("discount_pct", "double", nullable=False, min=0, max=1),
    ),
    unique_key=("date", "store_id", "category"),
    lineage=_LINEAGE,
)

INVENTORY = Contract(
    source=SOURCE,
    table="raw.retail_inventory",
    description="`inventory_YYYY-MM-DD.csv`: closing stock per store and category; `stockout` "
    "means the shelf was empty that day.",
    columns=(
        Column("date", "date", nullable=False, pattern=DATE_PATTERN),
        Column("store_id", "string", nullable=False),
        Column("category", "string", nullable=False),
        Column("on_hand_units", "integer", nullable=False, min=0, pattern=r"\d+"),
        Column("stockout", "boolean", nullable=False, accepted=("true", "false")),
    ),
    unique_key=("date", "store_id", "category"),
    lineage=_LINEAGE,
)

PROMOTIONS = Contract(
    source=SOURCE,
    table="raw.retail_promotions",
    description="`promotions_YYYY-MM-DD.csv`: promotions announced that day (no file on days "
    "without new promotions).",
    columns=(
        Column("promo_id", "string", nullable=False),
        Column("store_id", "string", nullable=False),
        Column("category", "string", nullable=False),
        Column("start_date", "date", nullable=False, pattern=DATE_PATTERN),
        Column("end_date", "date", nullable=False, pattern=DATE_PATTERN),
        Column("discount_pct", "double", nullable=False, min=0, max=1),
    ),
    unique_key=("promo_id",),
    lineage=_LINEAGE,
)


@dataclass(frozen=True)
class FileKind:
    """A kind of file in the drop: how its name looks and which contract it answers to."""

    name: str
    pattern: re.Pattern[str]
    contract: Contract
    date_column: str | None  # rows must carry the file's date here (promotions may start later)

    def match(self, file_name: str) -> re.Match[str] | None:
        return self.pattern.fullmatch(file_name)


KINDS: tuple[FileKind, ...] = (
    FileKind("stores", re.compile(r"stores\.csv"), STORES, None),
    FileKind("daily_sales", re.compile(r"daily_sales_(?P<date>\d{4}-\d{2}-\d{2})\.csv"), DAILY_SALES, "date"),
    FileKind("inventory", re.compile(r"inventory_(?P<date>\d{4}-\d{2}-\d{2})\.csv"), INVENTORY, "date"),
    FileKind("promotions", re.compile(r"promotions_(?P<date>\d{4}-\d{2}-\d{2})\.csv"), PROMOTIONS, None),
)
KIND_BY_NAME = {k.name: k for k in KINDS}
CONTRACTS = tuple(k.contract for k in KINDS)


def kind_of(file_name: str) -> tuple[FileKind, str | None] | None:
    """The file's kind and the date in its name, or None for a file that is not part of a drop."""
    for kind in KINDS:
        match = kind.match(file_name)
        if match:
            return kind, match.groupdict().get("date")
    return None
