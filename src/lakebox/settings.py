"""Settings from the environment or `lakebox.toml`, and the redaction of secrets.

Environment wins over the file. Secrets (passwords, tokens, keys) are accepted only from
the environment: a password written into lakebox.toml is refused, so it never ends up in
a committed file. The core's settings are fields of `Settings`; each pipeline's come from
its spec (`settings.pipeline("orders")`), in the file under `[lakebox.<pipeline>]` or flat
as `<pipeline>_<key>`. A key nobody declared is refused, so a typo is not silently ignored.

Every setting is declared once with its kind (lakebox.core_settings, and each pipeline's
spec) and checked when settings load, before anything runs: all the bad ones are reported
together, each naming the variable and the values it allows. `Settings.env` is the
environment over lakebox.toml's values (under their variable names), so code reading a
setting through its declaration, `HTTP_TIMEOUT.read(settings.env)`, sees either.

In a project (lakebox.project) the file is the project's lakebox.toml, the home defaults to
`<project>/.lakebox`, and relative paths are read from the project folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lakebox import core_settings as core
from lakebox.errors import ConfigError
from lakebox.project import PIPELINES_KEY, find_project
from lakebox.setting_kinds import Declared, Kind, folder_problem


class DeclaredSetting(Protocol):
    """What settings read of one setting a pipeline declares (lakebox.pipelines.spec.Setting)."""

    @property
    def key(self) -> str: ...
    @property
    def default(self) -> str | None: ...
    @property
    def doc(self) -> str: ...
    @property
    def env(self) -> str: ...
    @property
    def secret(self) -> bool: ...
    @property
    def kind(self) -> Kind[Any]: ...


class DeclaresSettings(Protocol):
    """What settings read of a pipeline's spec: its name and the settings it declares; the
    layers below `lakebox.pipelines` that need more of a spec type it as theirs."""

    @property
    def name(self) -> str: ...
    @property
    def settings(self) -> Sequence[DeclaredSetting]: ...


# the core's settings by their lakebox.toml key (secrets too, to refuse them by name)
_KEYS = {d.key or d.name.removeprefix("LAKEBOX_").lower(): d for d in core.CORE if d.key is not None}
_SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|PASSWD|_KEY$|WEBHOOK)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<at>@)")


# defaults Settings.load works out (under the home, or the machine's cache folder)
_DERIVED = (core.WAREHOUSE, core.LAKE, core.LANDING, core.CACHE_DIR)


# The pipelines whose settings are read, by name: set to pipeline discovery by the package
# root (lakebox/__init__.py), so settings never imports the layers above it.
def _no_pipelines(env: Mapping[str, str]) -> Mapping[str, DeclaresSettings]:
    return {}


_declared_pipelines: Callable[[Mapping[str, str]], Mapping[str, DeclaresSettings]] = _no_pipelines


def declare_pipelines(found_in: Callable[[Mapping[str, str]], Mapping[str, DeclaresSettings]]) -> None:
    """Where `Settings.load` finds the pipelines that declare settings (their specs)."""
    global _declared_pipelines
    _declared_pipelines = found_in


def discovered_pipelines(env: Mapping[str, str]) -> Mapping[str, DeclaresSettings]:
    """Every pipeline's spec, found as `declare_pipelines` was told: for the layers below
    `lakebox.pipelines` that need them (the dbt project's assembly) without importing it."""
    return _declared_pipelines(env)


@dataclass(frozen=True)
class PipelineSettings:
    """One pipeline's settings in force, by key (None: unset); a key it does not declare is
    an error, not None, so a typo in the code is caught at its first run."""

    pipeline: str
    resolved: Mapping[str, str | None]
    variables: Mapping[str, str]  # key -> environment variable, to name it in errors
    secrets: frozenset[str] = frozenset()  # keys never shown

    def __getitem__(self, key: str) -> str | None:
        if key not in self.resolved:
            raise ConfigError(f"pipeline {self.pipeline!r} declares no setting {key!r}; "
                              f"it declares: {', '.join(self.resolved) or 'none'}")
        return self.resolved[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.resolved)

    def integer(self, key: str) -> int:
        value = self[key]
        try:
            return int(value or "")
        except ValueError:
            raise ConfigError(f"{self.variables[key]}={value!r} is not a whole number "
                              f"(or [lakebox.{self.pipeline}] {key} in lakebox.toml)") from None


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse: str
    lake: str
    landing: str
    log_level: str = "INFO"
    cache_dir: Path | None = None  # machine-wide caches shared by every home; None = off
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    pipelines: Mapping[str, PipelineSettings] = field(default_factory=dict, repr=False, compare=False)
    declared: tuple[Declared[Any], ...] = field(default=(), repr=False, compare=False)  # every setting
    origins: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)  # variable -> where from

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        """The settings in force, every one checked: a ConfigError lists all the bad ones."""
        given = dict(os.environ if env is None else env)
        cwd = cwd or Path.cwd()
        project = find_project(given, cwd)
        specs = _declared_pipelines(given)
        declared = [*core.CORE, *(d for spec in specs.values() for _, d in _pipeline_declared(spec))]
        config = cwd / (given.get(core.CONFIG.name) or core.CONFIG.default or "")
        if project is not None:
            config = cwd / given[core.CONFIG.name] if given.get(core.CONFIG.name) else project.config
            cwd = project.root  # relative paths are the project's
        problems: list[str] = []
        named = given.get(core.CONFIG.name)
        from_file = {} if named == "off" else _read_toml(config, specs, problems)
        if named and named != "off" and not config.is_file():  # naming a missing file is a mistake
            problems.append(f"{core.CONFIG.name}={named!r} (from env) names no file ({config}); allowed: an existing "
                            "settings file, or off for none (unset: ./lakebox.toml when there is one)")
        env = {**given, **{name: value for name, value in from_file.items() if not given.get(name)}}
        origins = {d.name: "env" if given.get(d.name) else config.name if d.name in from_file else
                   "default" if d.default is not None or d in _DERIVED else "unset" for d in declared}
        for d in declared:
            text = env.get(d.name) or d.default
            problem = d.problem(text, origins[d.name]) if text is not None else None
            if problem:
                problems.append(redact(problem, env))  # a URL's password, a secret variable's value
        home = Path(env.get(core.HOME.name) or (project.home if project else core.HOME.default) or "")
        if not home.is_absolute():
            home = (cwd / home).resolve()
        if problem := folder_problem(core.HOME, home, origins[core.HOME.name]):
            problems.append(problem)
        warehouse = env.get(core.WAREHOUSE.name) or str(home / "warehouse.duckdb")
        if "://" not in warehouse and not Path(warehouse).is_absolute():
            warehouse = str((cwd / warehouse).resolve())
        try:
            _warehouse_kind(warehouse)
        except ConfigError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError(f"{len(problems)} setting(s) cannot be used:\n  " + "\n  ".join(problems)
                              + "\nfix them in the environment or lakebox.toml; `lakebox config --doc` and "
                              "docs/settings.md list every setting and the values it takes")
        return cls(
            home=home,
            warehouse=warehouse,
            lake=_absolute(env.get(core.LAKE.name) or str(home / "lake"), cwd),
            landing=_absolute(env.get(core.LANDING.name) or str(home / "landing"), cwd),
            log_level=core.LOG_LEVEL.read(env),
            cache_dir=_cache_dir(env.get(core.CACHE_DIR.name), env, cwd),
            env=env,
            pipelines={name: _pipeline_settings(spec, env) for name, spec in specs.items()},
            declared=tuple(declared),
            origins=origins,
        )

    def pipeline(self, name: str) -> PipelineSettings:
        """The settings of pipeline `name` in force."""
        if name not in self.pipelines:
            raise ConfigError(f"unknown pipeline {name!r}; pipelines found: {', '.join(self.pipelines) or 'none'}")
        return self.pipelines[name]

    def with_pipeline_values(self, name: str, values: Mapping[str, str]) -> Settings:
        """These settings with some of pipeline `name`'s replaced (e.g. a demo feed's API URL)."""
        current = self.pipeline(name)
        undeclared = sorted(set(values) - set(current))
        if undeclared:
            raise ConfigError(f"pipeline {name!r} declares no settings {undeclared}; it declares: {', '.join(current)}")
        replaced = dataclasses.replace(current, resolved={**current.resolved, **values})
        return dataclasses.replace(self, pipelines={**self.pipelines, name: replaced})

    @property
    def warehouse_kind(self) -> str:
        return _warehouse_kind(self.warehouse)

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def shown(self) -> list[tuple[str, str, str]]:
        """Every setting as `lakebox config` shows it: variable, value (secrets hidden, the
        core's locations resolved), and where it came from (env, lakebox.toml, default)."""
        resolved = {core.HOME.name: str(self.home), core.WAREHOUSE.name: self.warehouse, core.LAKE.name: self.lake,
                    core.LANDING.name: self.landing,
                    core.CACHE_DIR.name: str(self.cache_dir) if self.cache_dir else "off"}
        return [(d.name, _shown(resolved.get(d.name) or self.env.get(d.name) or d.default, d.secret, self.env),
                 self.origins.get(d.name, "default")) for d in self.declared]

    def describe(self) -> dict[str, str]:
        """What a user may see: every value with its secrets redacted."""
        return {
            "home": str(self.home),
            "warehouse": redact(self.warehouse),
            "lake": redact(self.lake),
            "landing": redact(self.landing),
            "cache_dir": str(self.cache_dir) if self.cache_dir else "off",
            "pipelines": ", ".join(self.pipelines) or "none",
            **{f"{name}.{key}": _shown(value, key in values.secrets, self.env)
               for name, values in self.pipelines.items() for key, value in values.resolved.items()},
        }


def _warehouse_kind(warehouse: str) -> str:
    scheme = warehouse.split("://", 1)[0].lower() if "://" in warehouse else ""
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("", "duckdb", "file"):
        return "duckdb"
    if scheme in ("spark", "spark+local"):
        return "spark"
    raise ConfigError(
        f"LAKEBOX_WAREHOUSE has an unknown scheme {scheme!r} ({redact(warehouse)}); "
        "use a DuckDB file path, postgresql://user@host:5432/db, spark://host:7077 or spark+local://"
    )


def _cache_dir(value: str | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """LAKEBOX_CACHE_DIR, else $XDG_CACHE_HOME/lakebox, else ~/.cache/lakebox; "off" disables."""
    if value and value.strip().lower() in ("off", "none", "0", "false"):
        return None
    if value:
        return Path(_absolute(value, cwd))
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "lakebox"


def _absolute(location: str, cwd: Path) -> str:
    if "://" in location or Path(location).is_absolute():
        return location
    return str((cwd / location).resolve())


def _read_toml(path: Path, specs: Mapping[str, DeclaresSettings], problems: list[str]) -> dict[str, str]:
    """The file's values, core and pipelines', by their environment variable, from the
    `[lakebox]` table (or the top level); what is wrong with it goes into `problems`."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc
    values: dict[str, str] = {}
    unknown: list[str] = []
    if isinstance(data.get("lakebox"), dict):  # then a key outside the table would be silently ignored
        unknown += [f"{key} (outside [lakebox])" for key in data if key != "lakebox"]
        data = data["lakebox"]
    for key, value in data.items():
        if key == PIPELINES_KEY:
            continue  # the project's list of pipelines, read by lakebox.project
        if key in _KEYS:
            problems.append(_take(path, values, _KEYS[key], value, key) or "")
        elif key in specs and isinstance(value, dict):
            declared = dict(_pipeline_declared(specs[key]))
            for inner, inner_value in value.items():
                if inner in declared:
                    problems.append(_take(path, values, declared[inner], inner_value, f"[lakebox.{key}] {inner}") or "")
                else:
                    unknown.append(f"[lakebox.{key}] {inner}")
        elif (flat := _flat(key, specs)) is not None:
            problems.append(_take(path, values, flat, value, key) or "")
        else:
            unknown.append(key)
    problems[:] = [p for p in problems if p]
    if unknown:
        declared_keys = "; ".join(f"[lakebox.{name}] {', '.join(k for k, _ in _pipeline_declared(spec))}"
                                  for name, spec in specs.items())
        problems.append(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(_KEYS)}"
                        + (f", and per pipeline {declared_keys}" if declared_keys else ""))
    return values


def _pipeline_declared(spec: DeclaresSettings) -> list[tuple[str, Declared[Any]]]:
    """A pipeline's settings by key: its spec's, and those the core reads for every pipeline."""
    own = [(s.key, Declared(s.env, s.kind, s.default, s.doc, f"[lakebox.{spec.name}] {s.key}", s.secret))
           for s in spec.settings]
    keys = {key for key, _ in own}
    return own + [(key, core.for_pipeline(key, spec.name)) for key in core.EVERY_PIPELINE if key not in keys]


def _flat(key: str, specs: Mapping[str, DeclaresSettings]) -> Declared[Any] | None:
    """The pipeline setting a flat `<pipeline>_<key>` names, if any."""
    for name, spec in specs.items():
        if key.startswith(f"{name}_"):
            found = dict(_pipeline_declared(spec)).get(key[len(name) + 1:])
            if found is not None:
                return found
    return None


def _take(path: Path, into: dict[str, str], declared: Declared[Any], value: object, written: str) -> str | None:
    """Put a value from the file into `into`, by its variable; else say why not."""
    if declared.secret:
        return f"{path}: '{written}' is a secret; secrets come only from the environment (set {declared.name} instead)"
    if declared.name in into:
        return f"{path}: '{written}' is given twice (flat and in its pipeline's table); keep one"
    if isinstance(value, dict | list):
        return f"{path}: '{written}' should be a single value, not {type(value).__name__}"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if _URL_PASSWORD.search(text):
        return (f"{path}: '{written}' holds a password; secrets come only from the environment "
                f"(set {declared.name} or PGPASSWORD instead)")
    into[declared.name] = text
    return None


def _pipeline_settings(spec: DeclaresSettings, env: Mapping[str, str]) -> PipelineSettings:
    """Environment, else lakebox.toml (both in `env`; never a secret from the file), else the default."""
    declared = _pipeline_declared(spec)
    return PipelineSettings(spec.name, {key: env.get(d.name) or d.default for key, d in declared},
                            {key: d.name for key, d in declared}, frozenset(key for key, d in declared if d.secret))


def _shown(value: str | None, secret: bool, env: Mapping[str, str]) -> str:
    if value is None:
        return "(unset)"
    return "***" if secret else redact(value, env)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables that look like secrets, longest first."""
    env = os.environ if env is None else env
    found = {v for k, v in env.items() if _SECRET_NAME.search(k) and v and len(v) >= 4}
    for value in env.values():
        match = _URL_PASSWORD.search(value or "")
        if match:
            found.add(match.group("pw"))
    return sorted(found, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """Hide passwords in URLs and the values of secret environment variables."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***{m.group('at')}", text)
    for secret in secret_values(env):
        text = text.replace(secret, "***")
    return text
