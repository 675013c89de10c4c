"""contract_for: a resource's `[contract]` as the gate's Contract."""

from __future__ import annotations

from pathlib import Path

from lakebox.declarative.config import ColumnConfig
from lakebox.declarative.load import contract_for
from lakebox.quality.contract import Column
from tests.declarative.loading import config


def test_types_rules_keys_and_names_follow_the_toml(tmp_path: Path) -> None:
    cfg = config(tmp_path, schema="discard_value", write="merge", version="updated_at", columns=(
        ColumnConfig("id", "integer"), ColumnConfig("pm25", "number", min=0, max=1000),
        ColumnConfig("flag", "text", required=True, unique=True, accepted=("a", "b"), pattern="[ab]"),
        ColumnConfig("on", "date", min="2024-01-01"), ColumnConfig("at", "timestamp", max="2030-01-01T00:00:00"),
        ColumnConfig("ok", "boolean"), ColumnConfig("updated_at", "timestamp"), ColumnConfig("n", "integer",
                                                                                            accepted=(1, 2))))
    resource = cfg.source.resources[0]
    contract = contract_for(cfg, resource)
    assert (contract.source, contract.table) == (f"{cfg.name}_readings", f"raw.{cfg.name}_readings")
    assert contract.columns == (
        Column("id", "integer", nullable=False), Column("pm25", "double", min=0.0, max=1000.0),
        Column("flag", "string", nullable=False, accepted=("a", "b"), pattern="[ab]"),
        Column("on", "date", min="2024-01-01"), Column("at", "timestamp", max="2030-01-01T00:00:00"),
        Column("ok", "boolean"), Column("updated_at", "timestamp"), Column("n", "integer", accepted=("1", "2")))
    assert contract.keys == (("id", "updated_at"), ("flag",)), "merge by version: one row per key and version"
    assert contract.version_key == ("id", "updated_at") and contract.schema_mode == "discard_value"


def test_a_resource_without_columns_takes_what_its_source_sends(tmp_path: Path) -> None:
    cfg = config(tmp_path, columns=())
    contract = contract_for(cfg, cfg.source.resources[0])
    assert contract.schema_mode == "evolve" and contract.columns == () and contract.keys == (("id",),)
