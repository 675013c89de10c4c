"""Warehouses describe themselves: code outside `lakebox.warehouse` asks the configured
warehouse's kind what to do and never which kind it has; a kind is known from the settings
without a connection or its driver."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lakebox
from lakebox.errors import ConfigError
from lakebox.settings import Settings
from lakebox.warehouse.grants import apply_grants

SRC = Path(lakebox.__file__).parent
KIND_NAMES = {"duckdb", "postgres", "postgresql", "spark", "sqlite"}
SCHEMES = ("duckdb", "postgres", "spark")
# what a comparison with a kind's name is about: the warehouse (not a bench scenario or a fault)
ASKED = re.compile(r"kind|warehouse|scheme|\bwh\b|engine", re.IGNORECASE)
# the warehouse package describes the kinds; settings.py reads the URL's scheme into one
OWNERS = (SRC / "warehouse", SRC / "settings.py")


def _strings(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value.lower()}
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return {s for item in node.elts for s in _strings(item)}
    return set()


def _kind_questions(path: Path, root: Path = SRC.parent) -> list[str]:
    """Each place in `path` that reads `warehouse_kind` or compares a value with a warehouse kind's name."""
    found = []
    where = path.relative_to(root)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "warehouse_kind" or \
                isinstance(node, ast.Name) and node.id == "warehouse_kind":
            found.append(f"{where}:{node.lineno}: reads warehouse_kind")
        if isinstance(node, ast.Compare):
            sides = (node.left, *node.comparators)
            names = set().union(*(_strings(side) for side in sides)) & KIND_NAMES
            asked = any(ASKED.search(ast.unparse(side)) for side in sides if not _strings(side))
            if names and asked:
                found.append(f"{where}:{node.lineno}: compares with {sorted(names)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "startswith":
            schemes = {s for arg in node.args for s in _strings(arg) if s.startswith(SCHEMES)}
            if schemes:
                found.append(f"{where}:{node.lineno}: looks for {sorted(schemes)}")
    return found


def test_nothing_outside_the_warehouse_asks_which_kind_it_has() -> None:
    files = [p for p in SRC.rglob("*.py") if not any(p == o or o in p.parents for o in OWNERS)]
    assert len(files) > 50
    found = [place for path in files for place in _kind_questions(path)]
    assert not found, "ask lakebox.warehouse.kind_of(settings) instead:\n" + "\n".join(found)


def test_the_rule_sees_a_question_about_the_kind(tmp_path: Path) -> None:
    asks = tmp_path / "asks.py"
    asks.write_text("def f(settings, wh, results):\n    a = settings.warehouse_kind\n"
                    "    b = 'postgres' in results\n"  # a bench scenario's name, not a question
                    "    c = settings.warehouse.startswith('postgresql://')\n"
                    "    return wh.kind in ('duckdb', 'x')\n")
    assert sorted(place.split(": ", 1)[1] for place in _kind_questions(asks, tmp_path)) == [
        "compares with ['duckdb']", "looks for ['postgresql://']", "reads warehouse_kind"]


DESCRIBE = """
import json, sys
from pathlib import Path
from lakebox.settings import Settings
from lakebox.warehouse import kind_of
out = {}
for url in sys.argv[1:]:
    settings = Settings.load(env={"LAKEBOX_HOME": "/tmp/none", "LAKEBOX_WAREHOUSE": url, "LAKEBOX_CONFIG": "off"})
    kind = kind_of(settings)
    out[url] = [kind.name, kind.exists(settings.warehouse), kind.max_concurrent_runs,
                kind.dbt_profile(settings).split("type: ")[1].split()[0], kind.dbt_password(settings)]
out["loaded"] = sorted(m for m in ("psycopg", "pyspark", "dbt", "duckdb") if m in sys.modules)
print(json.dumps(out))
"""


def test_each_kind_describes_itself_without_its_driver(tmp_path: Path) -> None:
    made = tmp_path / "made.duckdb"
    made.write_bytes(b"")
    urls = [str(tmp_path / "new.duckdb"), f"duckdb://{made}", "postgresql://u:s%40cret@127.0.0.1:5432/db",
            "spark+local://2"]
    proc = subprocess.run([sys.executable, "-c", DESCRIBE, *urls], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    described = json.loads(proc.stdout)
    assert described.pop("loaded") == ["duckdb"], "the PostgreSQL and Spark kinds load no driver, nor dbt"
    assert described == {
        urls[0]: ["duckdb", False, 1, "duckdb", ""],
        urls[1]: ["duckdb", True, 1, "duckdb", ""],
        urls[2]: ["postgres", True, 4, "postgres", "s@cret"],
        urls[3]: ["spark", True, 4, "spark", ""],
    }


def test_grants_are_refused_by_a_kind_without_roles_naming_it(tmp_path: Path) -> None:
    for url, label in ((str(tmp_path / "w.duckdb"), "DuckDB"), ("spark+local://1", "Spark")):
        settings = Settings.load(env={"LAKEBOX_HOME": str(tmp_path), "LAKEBOX_WAREHOUSE": url, "LAKEBOX_CONFIG": "off"})
        with pytest.raises(ConfigError, match=f"the warehouse is {label} .*which has no roles"):
            apply_grants(settings)
    assert not (tmp_path / "w.duckdb").exists(), "refused before anything was opened"


def test_dagster_lets_as_many_runs_write_at_once_as_the_warehouse_takes(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from lakebox.orchestration.home import dagster_home

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for url, runs in ((str(tmp_path / "w.duckdb"), 1), ("postgresql://u@127.0.0.1:5432/db", 4)):
        home = tmp_path / str(runs)
        settings = Settings.load(env={"LAKEBOX_HOME": str(home), "LAKEBOX_WAREHOUSE": url, "LAKEBOX_CONFIG": "off"})
        assert f"max_concurrent_runs: {runs}\n" in (dagster_home(settings) / "dagster.yaml").read_text()
