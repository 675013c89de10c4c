"""docs/pipelines.md's reference of every pipeline.toml key, written from the JSON Schema, so
the docs, `lakebox schema pipeline` and the checker cannot drift apart (a test holds the
page to it: `python -m lakebox.declarative.reference` prints what belongs there)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

BEGIN = "<!-- pipeline.toml reference: written by `python -m lakebox.declarative.reference`; do not edit -->"
END = "<!-- end of the pipeline.toml reference -->"

# (heading, the schema part, where its keys sit in the TOML)
SECTIONS = (
    ("The pipeline", "#", ""),
    ("[source]", "source", "source."),
    ("source.auth", "auth", "source.auth."),
    ("paginator (source.paginator, or a resource's)", "paginator", "paginator."),
    ("[[source.resources]]", "resource", "source.resources[]."),
    ("incremental (a rest resource's)", "incremental", "incremental."),
    ("[source.resources.contract]", "contract", "contract."),
    ("contract.columns.NAME", "column", "columns.NAME."),
    ("[[models]]", "model", "models[]."),
    ("candidates (a model's)", "candidate", "candidates[]."),
)


def schema() -> dict[str, Any]:
    text = resources.files("lakebox.declarative").joinpath("pipeline.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _properties(doc: dict[str, Any], part: str) -> dict[str, Any]:
    node = doc if part == "#" else doc["$defs"][part]
    if "properties" not in node:  # a choice of forms (the paginator): the table form's keys
        node = next(form for form in node.get("anyOf", []) if "properties" in form)
    props: dict[str, Any] = node["properties"]
    return props


def _kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "$ref" in prop:
        return "table"
    kind = prop.get("type", "")
    if kind == "array":
        items = prop.get("items", {})
        return f"list of {items.get('type', 'tables')}"
    if isinstance(kind, list):
        return " or ".join(kind)
    if "anyOf" in prop or "oneOf" in prop:
        return " or ".join(sorted({str(f.get("type", "table")) for f in prop.get("anyOf", prop.get("oneOf", []))}))
    return str(kind or "value")


def markdown() -> str:
    doc = schema()
    lines = [BEGIN, ""]
    for heading, part, prefix in SECTIONS:
        lines += [f"#### {heading}", "", "| key | type | what it is |", "|---|---|---|"]
        for key, prop in _properties(doc, part).items():
            text = str(prop.get("description", "")).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{prefix}{key}` | {_kind(prop)} | {text} |")
        lines.append("")
    return "\n".join([*lines, END])


if __name__ == "__main__":
    print(markdown())
