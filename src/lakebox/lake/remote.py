"""Choosing the filesystem for a lake URL: local disk by default, S3/MinIO by URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakebox.lake.store import Lake


def lake_for_url(url: str, env: Mapping[str, str]) -> Lake:
    if url.startswith("s3://"):
        return Lake(url, storage_options=s3_storage_options(env))
    return Lake(url)


def s3_storage_options(env: Mapping[str, str]) -> dict[str, Any]:
    """Endpoint from AWS_ENDPOINT_URL (MinIO, moto); credentials from the AWS variables."""
    options: dict[str, Any] = {}
    endpoint = env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    if env.get("AWS_ACCESS_KEY_ID"):
        options["key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret"] = env.get("AWS_SECRET_ACCESS_KEY", "")
    if env.get("AWS_SESSION_TOKEN"):
        options["token"] = env["AWS_SESSION_TOKEN"]
    return options
