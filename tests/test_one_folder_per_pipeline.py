"""One folder per pipeline: the dashboard shell and the ML lifecycle hold nothing of a
bundled pipeline. Its page, the queries behind it and its model code live in
`lakebox/pipelines/<name>/`; `lakebox.dashboard` and `lakebox.ml` neither import a pipeline's
package nor query its marts."""

from __future__ import annotations

import ast
from pathlib import Path

from lakebox.pipelines import discover, is_bundled

SRC = Path(__file__).resolve().parents[1] / "src" / "lakebox"
SHARED = ("dashboard", "ml")


def _bundled() -> dict[str, tuple[str, ...]]:
    """Each bundled pipeline's name and the tables it builds."""
    return {s.name: tuple(s.marts) for s in discover().values() if is_bundled(s)}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module), *((node.lineno, f"{node.module}.{a.name}") for a in node.names)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def _pipeline_specific(source: str, where: str, bundled: dict[str, tuple[str, ...]]) -> list[str]:
    """What in this module belongs to a bundled pipeline: an import of its package, a query
    naming one of its tables, a function or class named after it (`retail_kpis`, `RetailFilter`)."""
    tree = ast.parse(source)
    problems = [f"{where}:{line} imports {module}" for line, module in _imports(tree)
                if any(module == f"lakebox.pipelines.{n}" or module.startswith(f"lakebox.pipelines.{n}.")
                       for n in bundled)]
    marts = {m for tables in bundled.values() for m in tables}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            problems += [f"{where}:{node.lineno} queries {m}" for m in sorted(marts) if m in node.value]
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            lowered = node.name.lower().lstrip("_")
            problems += [f"{where}:{node.lineno} defines {node.name} (a {n} function)" for n in bundled
                         if lowered.startswith((f"{n}_", f"{n.split('_')[0]}_"))
                         or (isinstance(node, ast.ClassDef) and lowered.startswith(n.split("_")[0]))]
    return problems


def test_the_shared_packages_hold_no_pipelines_code() -> None:
    bundled = _bundled()
    assert set(bundled) >= {"retail", "orders", "github_commits", "who_gho"}
    problems = [p for package in SHARED for path in sorted((SRC / package).rglob("*.py"))
                for p in _pipeline_specific(path.read_text(), str(path.relative_to(SRC.parent)), bundled)]
    assert not problems, "pipeline code outside its folder (move it to lakebox/pipelines/<name>/):\n" + \
        "\n".join(problems)


def test_the_check_finds_what_the_move_took_out() -> None:
    """The rule would have caught the old layout: retail's queries and the classifier's import."""
    old = ("from lakebox.pipelines.github_commits.classifier import SPEC\n\n"
           "class RetailFilter:\n    pass\n\n\n"
           "def retail_kpis() -> str:\n    return 'select 1 from analytics.store_daily_performance'\n")
    problems = _pipeline_specific(old, "dashboard/data.py", _bundled())
    assert {p.split(" ", 1)[1] for p in problems} == {
        "imports lakebox.pipelines.github_commits.classifier",
        "imports lakebox.pipelines.github_commits.classifier.SPEC",
        "defines RetailFilter (a retail function)",
        "defines retail_kpis (a retail function)",
        "queries analytics.store_daily_performance",
    }, problems


def test_every_bundled_page_and_model_lives_in_its_folder() -> None:
    for spec in discover().values():
        if not is_bundled(spec):
            continue
        if spec.dashboard_page is not None:
            assert spec.dashboard_page.module.startswith("."), f"{spec.name}: page outside its folder"
        assert all(ref.startswith(".") for ref in spec.ml_models), f"{spec.name}: model outside its folder"
