"""pipeline.schema.json, the editors' view of pipeline.toml: a valid draft 2020-12 schema that
accepts every valid config and refuses what the parser refuses; its keys are the parser's
keys (so the two cannot drift), each with a description; shipped and printed by
`lakebox schema pipeline`."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lakebox.declarative import config as cfg
from lakebox.declarative.parse import known_keys
from tests.conftest import run_cli
from tests.declarative.test_config import FILES, REST, VALID

SCHEMA_FILE = Path(cfg.__file__).with_name("pipeline.schema.json")
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def as_json(value: Any) -> Any:
    """A TOML document as an editor's schema validator sees it: dates and times as ISO strings."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def errors(text: str) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in VALIDATOR.iter_errors(as_json(tomllib.loads(text)))]


def resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target = SCHEMA
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_keys(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, its schema) of every key the schema names, in the parser's notation
    (`[]` an array's items, `*` a map's values that are tables of keys)."""
    node = resolve(node)
    if not isinstance(node, dict):
        return
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        yield from schema_keys(branch, prefix)
    for name, sub in node.get("properties", {}).items():
        key = f"{prefix}.{name}" if prefix else name
        yield key, sub
        yield from schema_keys(sub, key)
    if "items" in node and isinstance(node["items"], dict):
        yield from schema_keys(node["items"], f"{prefix}[]")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in resolve(extra):
        yield from schema_keys(extra, f"{prefix}.*")


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("case", sorted(VALID))
def test_the_schema_accepts_every_valid_config(case: str) -> None:
    assert errors(VALID[case]) == []


@pytest.mark.parametrize(("text", "path"), [
    (REST.replace('description = "Readings"', 'descripton = "Readings"'), ""),
    (REST.replace('"page_number"', '"pages"'), "source/resources/0/paginator"),
    (REST.replace('paginator = { type = "page_number", page_param = "page", total_path = "total_pages" }',
                  'paginator = { type = "json_link", cursor_path = "next" }'), "source/resources/0/paginator"),
    (REST.replace('base_url = "https://api.example.org"\n', ""), "source"),
    (REST.replace('"bearer", token_env = "EXAMPLE_TOKEN"', '"bearer", token = "x"'), "source/auth"),
    (REST.replace('columns.flag = { type = "text", accepted = ["a", "b"] }', 'columns.flag = { type = "text", min = 0 }'),
     "source/resources/0/contract/columns/flag"),
    (REST.replace('primary_key = ["id"]\n', ""), "source/resources/0"),
    (REST.replace('metric = "mae"', 'metric = "accuracy"'), "models/0/metric"),
    (REST.replace('"ridge"', '"xgboost"'), "models/0/candidates/0/estimator"),
    (FILES.replace('glob = "sales_*.csv"\n', ""), "source/resources/0"),
    (FILES.replace('[source]\ntype = "files"', '[source]\ntype = "files"\nbase_url = "https://x.org"'), "source"),
])
def test_the_schema_refuses_what_the_parser_refuses(text: str, path: str) -> None:
    found = errors(text)
    assert found, "the schema accepted it"
    assert any(e.startswith(f"{path}:") for e in found), found


def test_the_schema_names_exactly_the_keys_the_parser_knows() -> None:
    in_schema = {key for key, _ in schema_keys(SCHEMA)}
    assert sorted(in_schema - known_keys()) == [], "in the schema, unknown to the parser"
    assert sorted(known_keys() - in_schema) == [], "known to the parser, missing from the schema"


def test_every_key_has_a_description() -> None:
    undescribed = [key for key, sub in schema_keys(SCHEMA) if sub is not False and not sub.get("description")]
    assert undescribed == []
    assert all(resolve(d).get("description") for d in SCHEMA["$defs"].values())


@pytest.mark.parametrize(("key", "allowed"), [
    ("source.type", cfg.SOURCE_TYPES),
    ("source.auth.type", cfg.AUTH_TYPES),
    ("source.paginator.type", cfg.PAGINATORS),
    ("source.resources[].write_disposition", cfg.WRITE_DISPOSITIONS),
    ("source.resources[].format", cfg.FILE_FORMATS),
    ("source.resources[].contract.schema", cfg.SCHEMA_MODES),
    ("source.resources[].contract.columns.*.type", cfg.COLUMN_TYPES),
    ("models[].task", cfg.TASKS),
    ("models[].candidates[].estimator", cfg.ESTIMATORS),
])
def test_the_schema_allows_the_values_the_config_allows(key: str, allowed: tuple[str, ...]) -> None:
    (sub,) = [s for k, s in schema_keys(SCHEMA) if k == key]
    assert tuple(sub["enum"]) == allowed


def test_a_column_type_s_rules_match_rules_by_type() -> None:
    column = SCHEMA["$defs"]["column"]
    for rule in column["allOf"]:
        kind = rule["if"]["properties"]["type"]["const"]
        refused = {r for r, sub in rule["then"]["properties"].items() if sub is False}
        assert refused == {"min", "max", "accepted", "pattern"} - set(cfg.RULES_BY_TYPE[kind]), kind


def test_the_schema_ships_in_the_package() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["lakebox"]
    assert any(fnmatch.fnmatch("declarative/pipeline.schema.json", p) for p in patterns), patterns


def test_lakebox_schema_pipeline_prints_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")} | {"PWD": str(tmp_path)}
    result = run_cli("schema", "pipeline", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == SCHEMA
