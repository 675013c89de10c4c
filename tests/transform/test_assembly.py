"""The one dbt project assembled from the pipelines' folders: links, one schema convention,
and a digest that is the same for every home of the same pipelines."""

from __future__ import annotations

import os
from pathlib import Path

from lakebox.pipelines import discover
from lakebox.transform import assembly


def test_every_bundled_pipeline_brings_its_own_models_and_the_project_names_none() -> None:
    specs = discover({})
    project_yml = assembly.dbt_project_yml(assembly.links(specs.values()))
    for name in ("orders", "retail", "github_commits", "who_gho"):
        assert f'"models/{name}"' in project_yml
        assert f"    {name}:" not in project_yml, "no per-pipeline configuration"
    for layer, schema in {"staging": "staging", "marts": "analytics", "ml": "ml"}.items():
        assert f"    {layer}:\n      +schema: {schema}\n" in project_yml
    links = assembly.links(specs.values())
    assert links["models/orders"] == Path(specs["orders"].folder) / "models"
    assert links["tests/orders"] == Path(specs["orders"].folder) / "data_tests"
    assert links["macros/retail"] == Path(specs["retail"].folder) / "macros"
    assert links["macros/lakebox"] == assembly.SHARED_MACROS


def test_no_model_names_its_schema_the_folder_does() -> None:
    for spec in discover({}).values():
        for sql in (Path(spec.folder) / "models").rglob("*.sql"):
            assert "schema=" not in sql.read_text(), f"{sql}: its folder places it (staging, marts, ml)"


def test_two_homes_of_the_same_pipelines_have_one_digest_and_a_switched_off_pipeline_leaves(tmp_path: Path) -> None:
    specs = discover({})
    first = assembly.assemble(tmp_path / "one", specs.values())
    second = assembly.assemble(tmp_path / "two", specs.values())
    assert assembly.signature(first) == assembly.signature(second)
    assert os.readlink(first / "models" / "orders") == str(Path(specs["orders"].folder) / "models")
    fewer = [s for s in specs.values() if s.name != "orders"]
    assembly.assemble(first, fewer)
    assert not (first / "models" / "orders").exists() and not (first / "tests" / "orders").exists()
    assert '"models/orders"' not in (first / "dbt_project.yml").read_text()
    assert assembly.signature(first) != assembly.signature(second)


def test_a_home_copied_without_its_links_gets_them_back(tmp_path: Path) -> None:
    import shutil

    specs = discover({})
    original = assembly.assemble(tmp_path / "one", specs.values())
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)  # symlinks=False: the links become copies of the folders
    assert not (copy / "macros" / "lakebox").is_symlink()
    assembly.assemble(copy, specs.values())
    assert (copy / "macros" / "lakebox").is_symlink() and (copy / "models" / "orders").is_symlink()
    assert assembly.signature(copy) == assembly.signature(original)
