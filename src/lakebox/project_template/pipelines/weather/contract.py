"""What a readings page must hold to be loaded; a page that breaks it is quarantined whole."""

from lakebox.quality import Column, Contract

CONTRACT = Contract(
    source="weather",
    table="raw.weather_readings",
    description="One row per reading as sent by the API (`GET /v1/readings`).",
    columns=(
        Column("station", "string", nullable=False),
        Column("measured_at", "timestamp", nullable=False),
        Column("temperature_c", "double", nullable=False, min=-90, max=60),
    ),
    unique_key=("station", "measured_at"),
    version_key=("station", "measured_at"),  # a reading sent again (the overlap) is not loaded twice
)
