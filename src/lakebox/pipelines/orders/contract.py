"""The orders API's contract, declared once: it drives checks, raw DDL and docs."""

from lakebox.quality import Column, Contract

STATUSES = ("placed", "paid", "shipped", "cancelled", "refunded")

CONTRACT = Contract(
    source="orders",
    table="raw.orders",
    description="One row per order version as sent by the orders API (`GET /v1/orders`).",
    columns=(
        Column("order_id", "string", nullable=False, description="the order's id"),
        Column("customer_id", "string", nullable=False),
        Column("amount", "decimal", nullable=False, min=0),
        Column("currency", "string", nullable=False, pattern="[A-Z]{3}"),
        Column("status", "string", nullable=False, accepted=STATUSES),
        Column("created_at", "timestamp", nullable=False),
        Column("updated_at", "timestamp", nullable=False),
    ),
    unique_key=("order_id",),
    version_key=("order_id", "updated_at"),
)
