"""The orders pipeline: a synthetic orders REST API that lakebox serves itself, and its ingestion."""
