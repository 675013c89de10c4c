"""Settings from the environment or `lakebox.toml`, and the redaction of secrets.

Environment wins over the file. Secrets (passwords, tokens, keys) are accepted only from
the environment: a password written into lakebox.toml is refused, so it never ends up in
a committed file. The core's settings are fields of `Settings`; each pipeline's come from
its spec (`settings.pipeline("orders")`), in the file under `[lakebox.<pipeline>]` or flat
as `<pipeline>_<key>`. A key nobody declared is refused, so a typo is not silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lakebox.errors import ConfigError

if TYPE_CHECKING:
    from lakebox.pipelines.spec import PipelineSpec

_KEYS = {
    "home": "LAKEBOX_HOME",
    "warehouse": "LAKEBOX_WAREHOUSE",
    "lake": "LAKEBOX_LAKE",
    "landing": "LAKEBOX_LANDING",
    "log_level": "LAKEBOX_LOG_LEVEL",
    "cache_dir": "LAKEBOX_CACHE_DIR",
}
_SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|PASSWD|_KEY$|WEBHOOK)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<at>@)")


# The pipelines whose settings are read, by name: set to pipeline discovery by the package
# root (lakebox/__init__.py), so settings never imports the layers above it.
def _no_pipelines(env: Mapping[str, str]) -> Mapping[str, PipelineSpec]:
    return {}


_declared_pipelines: Callable[[Mapping[str, str]], Mapping[str, PipelineSpec]] = _no_pipelines


def declare_pipelines(found_in: Callable[[Mapping[str, str]], Mapping[str, PipelineSpec]]) -> None:
    """Where `Settings.load` finds the pipelines that declare settings (their specs)."""
    global _declared_pipelines
    _declared_pipelines = found_in

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

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        cwd = cwd or Path.cwd()
        specs = _declared_pipelines(env)
        file_values, pipeline_files = _read_toml(Path(env.get("LAKEBOX_CONFIG", cwd / "lakebox.toml")), specs)
        values = {k: env.get(name) or file_values.get(k) for k, name in _KEYS.items()}
        home = Path(values["home"] or ".lakebox")
        if not home.is_absolute():
            home = (cwd / home).resolve()
        warehouse = values["warehouse"] or str(home / "warehouse.duckdb")
        if "://" not in warehouse and not Path(warehouse).is_absolute():
            warehouse = str((cwd / warehouse).resolve())
        return cls(
            home=home,
            warehouse=warehouse,
            lake=_absolute(values["lake"] or str(home / "lake"), cwd),
            landing=_absolute(values["landing"] or str(home / "landing"), cwd),
            log_level=(values["log_level"] or "INFO").upper(),
            cache_dir=_cache_dir(values["cache_dir"], env, cwd),
            env=env,
            pipelines={name: _pipeline_settings(spec, env, pipeline_files.get(name, {}))
                       for name, spec in specs.items()},
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
        scheme = urlsplit(self.warehouse).scheme if "://" in self.warehouse else ""
        if scheme in ("postgresql", "postgres"):
            return "postgres"
        if scheme in ("", "duckdb", "file"):
            return "duckdb"
        raise ConfigError(
            f"LAKEBOX_WAREHOUSE has an unknown scheme {scheme!r} ({redact(self.warehouse)}); "
            "use a DuckDB file path or postgresql://user@host:5432/db"
        )

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

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


def _read_toml(path: Path, specs: Mapping[str, PipelineSpec]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The core's values and each pipeline's, from the `[lakebox]` table (or the top level)."""
    if not path.is_file():
        return {}, {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc
    data = data.get("lakebox", data)
    core: dict[str, str] = {}
    pipelines: dict[str, dict[str, str]] = {name: {} for name in specs}
    unknown: list[str] = []
    for key, value in data.items():
        if key in _KEYS:
            core[key] = _file_value(path, key, value, _KEYS[key])
        elif key in specs and isinstance(value, dict):
            for inner, inner_value in value.items():
                if not _take(path, pipelines[key], specs[key], inner, inner_value, f"[lakebox.{key}] {inner}"):
                    unknown.append(f"[lakebox.{key}] {inner}")
        elif not any(key.startswith(f"{name}_") and _take(path, pipelines[name], spec, key[len(name) + 1:], value, key)
                     for name, spec in specs.items()):
            unknown.append(key)
    if unknown:
        declared = "; ".join(f"[lakebox.{name}] {', '.join(s.key for s in spec.settings)}"
                             for name, spec in specs.items() if spec.settings)
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(_KEYS)}"
                          + (f", and per pipeline {declared}" if declared else ""))
    return core, pipelines


def _take(path: Path, into: dict[str, str], spec: PipelineSpec, key: str, value: object, written: str) -> bool:
    """Put a pipeline's value from the file into `into`; False when the pipeline has no such key."""
    setting = next((s for s in spec.settings if s.key == key), None)
    if setting is None:
        return False
    if setting.secret:
        raise ConfigError(f"{path}: '{written}' is a secret; secrets come only from the environment "
                          f"(set {setting.env} instead)")
    if key in into:
        raise ConfigError(f"{path}: {spec.name}'s '{key}' is given twice ('{spec.name}_{key}' and "
                          f"[lakebox.{spec.name}] {key}); keep one")
    into[key] = _file_value(path, written, value, setting.env)
    return True


def _file_value(path: Path, written: str, value: object, variable: str) -> str:
    if isinstance(value, dict | list):
        raise ConfigError(f"{path}: '{written}' should be a single value, not {type(value).__name__}")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if _URL_PASSWORD.search(text):
        raise ConfigError(
            f"{path}: '{written}' holds a password; secrets come only from the environment "
            f"(set {variable} or PGPASSWORD instead)"
        )
    return text


def _pipeline_settings(spec: PipelineSpec, env: Mapping[str, str], from_file: Mapping[str, str]) -> PipelineSettings:
    """Environment, else lakebox.toml (never for a secret), else the spec's default."""
    values = {s.key: env.get(s.env) or (None if s.secret else from_file.get(s.key)) or s.default for s in spec.settings}
    return PipelineSettings(spec.name, values, {s.key: s.env for s in spec.settings},
                            frozenset(s.key for s in spec.settings if s.secret))


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
