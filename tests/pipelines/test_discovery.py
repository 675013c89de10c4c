"""Every pipeline is one folder the core finds by itself: each spec loads, its marts exist in
the dbt project, its settings are documented, its commands are on `lakebox`, and a pipeline
dropped into another folder is found without editing any shared file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import duckdb
import pytest
import typer

import lakebox.pipelines
from lakebox.errors import ConfigError
from lakebox.pipelines import PATH_ENV, dashboard_pages, discover
from lakebox.pipelines.spec import PipelineSpec
from lakebox.settings import Settings
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
SPECS = discover()
LAKEBOX_NAME = re.compile(r"\bLAKEBOX_[A-Z0-9_]*[A-Z0-9]\b")


def test_every_folder_under_pipelines_is_a_pipeline_found_without_a_list() -> None:
    folders = {p.name for p in Path(lakebox.pipelines.__file__).parent.iterdir() if (p / "__init__.py").is_file()}
    assert set(SPECS) == folders
    assert {"orders", "retail"} <= folders
    assert not hasattr(lakebox.pipelines, "REGISTRY")


@pytest.mark.parametrize("spec", SPECS.values(), ids=list(SPECS))
def test_every_reference_of_a_spec_loads(spec: PipelineSpec) -> None:
    pipeline = spec.pipeline()
    assert [s.name for s in pipeline.stages] == [s.name for s in spec.stages]
    assert all(callable(s.fn) for s in pipeline.stages)
    assert (pipeline.waiting_input is None) == (spec.waiting_input is None)
    for command in spec.commands:
        assert callable(spec.resolve(command.fn))
    if spec.demo_feed is not None:
        assert callable(spec.resolve(spec.demo_feed))


@pytest.mark.slow
def test_every_mart_a_pipeline_declares_is_a_model_of_its_dbt_selector(lakebox_env: dict[str, str]) -> None:
    from lakebox.transform.dbt import _parsed_manifest, parse_project

    settings = Settings.load()
    parse_project(settings)
    models = {f"{n.schema}.{n.name}": n.original_file_path for n in _parsed_manifest(settings).nodes.values()
              if n.resource_type == "model"}
    for name, spec in SPECS.items():
        if spec.dbt_selector is None:
            continue
        assert spec.dbt_selector.startswith("path:"), f"{name}: select its models by folder, path:models/{name}"
        folder = spec.dbt_selector.removeprefix("path:").rstrip("/") + "/"
        for mart in spec.marts:
            assert mart in models, f"{name}: mart {mart} is not a model of the dbt project"
            assert models[mart].startswith(folder), f"{name}: {mart} is in {models[mart]}, outside {folder}"


def settings_row(spec: PipelineSpec, key: str) -> str:
    s = next(s for s in spec.settings if s.key == key)
    if s.secret:
        return f"| `{s.env}` | — (secret) | unset | {s.kind.allowed} | {s.doc} |"
    default = f"`{s.default}`" if s.default is not None else "unset"
    return f"| `{s.env}` | `{s.key}` | {default} | {s.kind.allowed} | {s.doc} |"


@pytest.mark.parametrize("spec", SPECS.values(), ids=list(SPECS))
def test_every_setting_a_pipeline_reads_is_documented(spec: PipelineSpec) -> None:
    doc = (REPO / "docs" / "settings.md").read_text()
    section = doc.split(f"\n### {spec.name}\n", 1)
    assert len(section) == 2, f"docs/settings.md has no '### {spec.name}' section"
    table = section[1].split("\n### ", 1)[0]
    for setting in spec.settings:
        assert settings_row(spec, setting.key) in table.splitlines(), \
            f"docs/settings.md, {spec.name}: want the row\n{settings_row(spec, setting.key)}"
    package = Path(lakebox.pipelines.__file__).parent / spec.name
    mentioned = {m for f in package.rglob("*.py") for m in LAKEBOX_NAME.findall(f.read_text())}
    undocumented = sorted(m for m in mentioned if f"`{m}`" not in doc)
    assert not undocumented, f"{spec.name} reads settings docs/settings.md does not name: {undocumented}"


def test_every_pipeline_command_is_on_lakebox() -> None:
    from lakebox.cli import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    declared = [c.name for spec in SPECS.values() for c in spec.commands]
    assert {"orders-api", "retail-generate"} <= set(declared)
    for name in declared:
        assert name in commands and commands[name].help, name


def test_dashboard_pages_come_from_the_specs_default_first() -> None:
    pages = dashboard_pages()
    assert [p.url_path for p in pages] == ["retail", "github_commits", "orders", "who_gho"]
    assert all(p.path.is_file() for p in pages)


FAKE = '''
from lakebox.pipelines.spec import Command, PipelineSpec, Setting, StageSpec

SPEC = PipelineSpec(
    name="{name}",
    description="a pipeline kept outside lakebox",
    stages=(StageSpec("greet", ".stages:greet"),),
    settings=(Setting("greeting", "hello", "what the greet stage writes"),),
    commands=(Command("{name}-hello", ".stages:hello"),),
)
'''
FAKE_STAGES = '''
from pathlib import Path

import typer

from lakebox.runner import StageResult


def greet(ctx):
    (Path(ctx.settings.home) / "greeting.txt").write_text(ctx.settings.pipeline("{name}")["greeting"])
    return StageResult(rows_in=1, rows_out=1)


def hello(name: str = "world") -> None:
    """Say hello."""
    typer.echo(f"hello {{name}}")
'''


def fake_pipeline(folder: Path, name: str, init: str = FAKE) -> Path:
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(init.format(name=name)))
    (package / "stages.py").write_text(textwrap.dedent(FAKE_STAGES.format(name=name)))
    return folder


@pytest.mark.slow
def test_a_pipeline_in_another_folder_is_found_run_configured_and_given_its_command(
    lakebox_env: dict[str, str], tmp_path: Path
) -> None:
    folder = fake_pipeline(tmp_path / "my_pipelines", "greeter")
    env = {**lakebox_env, PATH_ENV: str(folder), "PWD": str(tmp_path)}
    (tmp_path / "lakebox.toml").write_text('[lakebox.greeter]\ngreeting = "hi from toml"\n')

    helped = run_cli("--help", env=env)
    assert helped.returncode == 0 and "greeter-hello" in helped.stdout
    said = run_cli("greeter-hello", "--name", "lake", env=env)
    assert (said.returncode, said.stdout.strip()) == (0, "hello lake")
    shown = run_cli("config", env=env)
    assert "LAKEBOX_GREETER_GREETING\thi from toml\tlakebox.toml\tpipeline greeter" in shown.stdout, shown.stdout

    ran = run_cli("run", "greeter", env=env)
    assert ran.returncode == 0, ran.stderr
    home = Path(env["LAKEBOX_HOME"])
    assert (home / "greeting.txt").read_text() == "hi from toml"
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select pipeline, status from ops.pipeline_runs").fetchall() == [("greeter", "success")]

    unknown = run_cli("run", "nosuch", env=env)
    assert unknown.returncode == 2 and "greeter, orders, retail" in unknown.stderr


@pytest.mark.parametrize(
    ("name", "init", "message"),
    [
        ("nospec", "X = 1\n", "declares no SPEC"),
        ("misnamed", FAKE.replace('name="{name}"', 'name="other"'), "SPEC is named 'other'"),
        ("broken", "import not_a_module_anywhere\n", "cannot be imported: ModuleNotFoundError"),
        ("orders", FAKE, "has the name of"),
        ("nofn", FAKE.replace('StageSpec("greet", ".stages:greet")', 'StageSpec("greet")'),
         "stage 'greet' has no function"),
    ],
)
def test_a_bad_pipeline_folder_is_named_with_what_to_fix(tmp_path: Path, name: str, init: str, message: str) -> None:
    folder = fake_pipeline(tmp_path / f"extra_{name}", name, init)
    with pytest.raises(ConfigError, match=message) as err:
        discover({PATH_ENV: str(folder)})
    assert str(folder / name) in str(err.value) or name in str(err.value)


def test_lakebox_names_a_broken_pipeline_folder_instead_of_a_traceback(
    lakebox_env: dict[str, str], tmp_path: Path
) -> None:
    folder = fake_pipeline(tmp_path / "extra", "halfdone", "SPEC = None\n")
    result = run_cli("--help", env={**lakebox_env, PATH_ENV: str(folder)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"pipeline folder {folder}/halfdone: its __init__.py declares no SPEC" in result.stderr


def test_a_missing_pipelines_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{PATH_ENV}: {tmp_path / 'absent'} is not a folder"):
        discover({PATH_ENV: str(tmp_path / "absent")})
