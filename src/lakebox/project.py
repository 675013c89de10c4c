"""A lakebox project: a folder of your own with `lakebox.toml` and `pipelines/`, found as dbt
finds its project, so lakebox runs your pipelines without touching the installed package.

Which project: `--project DIR` on any command (it sets LAKEBOX_PROJECT), else
LAKEBOX_PROJECT, else the nearest `lakebox.toml` in the working directory or above it;
none: lakebox runs as it always did (the bundled pipelines, `./lakebox.toml`, `./.lakebox`).
A project's pipelines are the folders of its `pipelines/`, found beside the bundled ones;
`pipelines = ["mine", "orders"]` in its lakebox.toml keeps only those. Its home defaults to
`<project>/.lakebox`, and relative paths in its settings are read from the project folder.
Imports nothing heavy: `lakebox --help` finds the project too.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lakebox.core_settings import PROJECT
from lakebox.errors import ConfigError

PROJECT_ENV = PROJECT.name
PROJECT_FILE = "lakebox.toml"
PIPELINES_KEY = "pipelines"  # the project's own key in lakebox.toml: the pipelines it runs


@dataclass(frozen=True)
class Project:
    root: Path
    enabled: tuple[str, ...] | None  # `pipelines = [...]`: the only pipelines on; None: all

    @property
    def config(self) -> Path:
        return self.root / PROJECT_FILE

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    @property
    def home(self) -> Path:
        return self.root / ".lakebox"


def find_project(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Project | None:
    """The project in force (see the module doc), or None."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    given = env.get(PROJECT_ENV)
    if given:
        root = (cwd / given).resolve()
        if not (root / PROJECT_FILE).is_file():
            raise ConfigError(f"{PROJECT_ENV} (or --project) is {given}, which has no {PROJECT_FILE}; "
                              f"create a project there with `lakebox init {given}` or fix the path")
    else:
        root = next((d for d in (cwd, *cwd.parents) if (d / PROJECT_FILE).is_file()), None)  # type: ignore[assignment]
        if root is None:
            return None
    return Project(root, _enabled(root / PROJECT_FILE))


def _enabled(config: Path) -> tuple[str, ...] | None:
    try:
        data = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{config}: cannot be read as TOML ({exc}); fix the file") from exc
    inner = data.get("lakebox")
    names = (inner if isinstance(inner, dict) else data).get(PIPELINES_KEY)
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{config}: '{PIPELINES_KEY}' should be a list of pipeline names, "
                          f'e.g. {PIPELINES_KEY} = ["mine", "orders"]')
    return tuple(names)


def pin_project(argv: Sequence[str]) -> None:
    """The project in force into LAKEBOX_PROJECT, absolute: `--project DIR` (before the
    command), read before the command line is parsed since the pipelines (and their
    commands) depend on it, else the one found from the working directory; so what lakebox
    starts (dashboard, serve's processes) works on the same project wherever it runs. A
    project that cannot be read is left for the command to report."""
    take_project_option(argv)
    if os.environ.get(PROJECT_ENV):
        return
    try:
        found = find_project()
    except ConfigError:
        return
    if found is not None:
        os.environ[PROJECT_ENV] = str(found.root)


def take_project_option(argv: Sequence[str]) -> None:
    """`--project DIR` (before the command) into LAKEBOX_PROJECT, absolute."""
    for i, arg in enumerate(argv):
        if arg == "--project" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--project="):
            value = arg.removeprefix("--project=")
        elif arg.startswith("-"):
            continue
        else:
            return  # the command: what follows is its own
        os.environ[PROJECT_ENV] = str(Path(value).resolve())
        return


TEMPLATE = Path(__file__).parent / "project_template"


def init_project(folder: Path) -> list[Path]:
    """Write a small working project into `folder` (new or empty of lakebox files): the
    template's lakebox.toml, README, .gitignore and example pipeline. The files written."""
    import shutil

    if (folder / PROJECT_FILE).exists():
        raise ConfigError(f"{folder / PROJECT_FILE} exists: {folder} is a lakebox project already; "
                          "choose a new folder, or remove the file to start again")
    taken = [p for p in ("pipelines/weather", "README.md", ".gitignore") if (folder / p).exists()]
    if taken:
        raise ConfigError(f"{folder}: {', '.join(taken)} exist(s); `lakebox init` writes those, so it "
                          "refuses to overwrite them; choose a new or empty folder")
    written = []
    for source in sorted(TEMPLATE.rglob("*")):
        if not source.is_file() or "__pycache__" in source.parts or source.suffix == ".pyc":
            continue
        relative = source.relative_to(TEMPLATE)
        target = folder / (".gitignore" if relative.name == "gitignore" else relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written
