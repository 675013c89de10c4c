"""Dependencies point one way: runner/pipelines → ingest/quality/transform → lake,
warehouse → settings/errors/log. A module may import its own layer or a lower one at run
time; imports only for type checking (`if TYPE_CHECKING:`) are free."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "lakebox"

# lowest first; a top-level module or package of lakebox belongs to exactly one layer
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "setting_kinds", "core_settings", "settings", "log", "locks", "interrupts", "ports",
               "cron", "project", "tables", "run_view"}),
    frozenset({"lake", "warehouse"}),
    frozenset({"stage"}),
    frozenset({"ingest", "quality", "transform", "ml", "observability"}),
    frozenset({"runner", "pipelines", "watch", "demo", "dashboard", "orchestration", "bench", "cli",
               "quarantine_cli", "ml_cli", "lake_cli", "lineage_cli", "__init__", "__main__", "project_check",
               "project_template", "declarative"}),
)


def layer_of(name: str) -> int:
    found = [i for i, members in enumerate(LAYERS) if name in members]
    assert found, f"lakebox.{name} belongs to no layer: add it to LAYERS in {Path(__file__).name}"
    return found[0]


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, lakebox top-level name) of every import that runs, type-checking blocks left out."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("lakebox.")]
    return found


def test_every_import_points_down_or_sideways() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        owner = path.relative_to(SRC).parts[0].removesuffix(".py")
        for line, target in runtime_imports(path):
            if layer_of(target) > layer_of(owner):
                wrong.append(f"{path.relative_to(SRC.parent)}:{line} lakebox.{owner} imports lakebox.{target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_settings_imports_no_pipeline_module_even_for_types() -> None:
    """settings read a pipeline's spec through its own Protocol (DeclaresSettings): it names
    no lakebox.pipelines module, not even under TYPE_CHECKING."""
    tree = ast.parse((SRC / "settings.py").read_text())
    named = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    named += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert [m for m in named if m == "lakebox.pipelines" or m.startswith("lakebox.pipelines.")] == []
