"""Shared ingestion: fetching with retries, landing batches, checking and loading them."""
