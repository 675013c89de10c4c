"""Column names as dlt normalises them, so contracts and models name columns one way.

`Country Name` -> `country_name`, `pm2.5` -> `pm2_5`, `2024 total` -> `_2024_total`,
`camelCase` -> `camel_case`. Names that normalise alike get `_2`, `_3`... in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9_]+")
_UNDERSCORES = re.compile(r"_+")


def normalise(name: str) -> str:
    """One column name, snake_case: letters, digits and `_`, never starting with a digit."""
    snake = _CAMEL.sub("_", name.strip()).lower()
    snake = _UNDERSCORES.sub("_", _NOT_WORD.sub("_", snake)).strip("_") or "_"
    return f"_{snake}" if snake[0].isdigit() else snake


def normalise_all(names: Iterable[str]) -> dict[str, str]:
    """original -> normalised for a whole header; a clash gets `_2`, `_3`..."""
    taken: dict[str, int] = {}
    out = {}
    for name in names:
        base = normalise(name)
        taken[base] = taken.get(base, 0) + 1
        out[name] = base if taken[base] == 1 else f"{base}_{taken[base]}"
    return out
