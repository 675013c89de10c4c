"""append with a version_field: a (primary_key, version_field) already loaded is skipped, and
the fetch asks again from 1 s before its cursor; merge and plain append keep the cursor as
it is. The behaviour end to end (a late order in the watermark's second loaded once, nothing
loaded twice) is tests/pipelines/orders/test_incremental.py, orders being declared so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakebox.declarative.config import PipelineConfig, ResourceConfig, load_config
from lakebox.declarative.load import contract_for
from lakebox.declarative.rest import rest_source
from lakebox.errors import ConfigError

TOML = """[source]
type = "rest"
base_url = "http://127.0.0.1:9"

[[source.resources]]
name = "items"
path = "/items"
incremental = {{ cursor_path = "updated_at", param = "since" }}
{resource}
"""


def declared(tmp_path: Path, resource: str) -> tuple[PipelineConfig, ResourceConfig]:
    folder = tmp_path / "shop"
    folder.mkdir(exist_ok=True)
    (folder / "pipeline.toml").write_text(TOML.format(resource=resource))
    config = load_config(folder)
    return config, config.source.resources[0]


@pytest.mark.parametrize(("resource", "overlap", "version_key"), [
    ('primary_key = ["id"]\nversion_field = "updated_at"', dt.timedelta(seconds=1), ("id", "updated_at")),
    ('primary_key = ["id"]', None, ()),
    ('primary_key = ["id"]\nwrite_disposition = "merge"\nversion_field = "updated_at"', None, ("id", "updated_at")),
], ids=["append-with-version", "append", "merge-with-version"])
def test_only_append_with_a_version_field_overlaps_the_cursor(
    tmp_path: Path, resource: str, overlap: dt.timedelta | None, version_key: tuple[str, ...]
) -> None:
    config, items = declared(tmp_path, resource)
    source = rest_source(config, items, "http://127.0.0.1:9")
    assert source.incremental is not None and source.incremental.overlap == overlap
    contract = contract_for(config, items)
    assert contract.version_key == version_key
    assert contract.unique_key == (("id", "updated_at") if "merge" in resource else ("id",))


@pytest.mark.parametrize(("resource", "message"), [
    ('version_field = "updated_at"', "append with a version_field needs a primary_key of one column"),
    ('primary_key = ["id", "shop"]\nversion_field = "updated_at"', "needs a primary_key of one column"),
    ('primary_key = ["id"]\nwrite_disposition = "replace"\nversion_field = "updated_at"',
     'only for write_disposition = "merge"'),
], ids=["no-key", "two-column-key", "replace"])
def test_a_version_field_append_cannot_use_is_refused(tmp_path: Path, resource: str, message: str) -> None:
    with pytest.raises(ConfigError, match="version_field") as refused:
        declared(tmp_path, resource)
    assert message in str(refused.value)
