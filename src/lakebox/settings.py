"""Settings from the environment or `lakebox.toml`, and the redaction of secrets.

Environment wins over the file. Secrets (passwords, tokens, keys) are accepted only from
the environment: a password written into lakebox.toml is refused, so it never ends up in
a committed file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lakebox.errors import ConfigError

_KEYS = {
    "home": "LAKEBOX_HOME",
    "warehouse": "LAKEBOX_WAREHOUSE",
    "lake": "LAKEBOX_LAKE",
    "landing": "LAKEBOX_LANDING",
    "orders_api_url": "LAKEBOX_ORDERS_API_URL",
    "log_level": "LAKEBOX_LOG_LEVEL",
    "retail_policy": "LAKEBOX_RETAIL_POLICY",
    "cache_dir": "LAKEBOX_CACHE_DIR",
}
_SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|PASSWD|_KEY$)", re.I)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<at>@)")


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse: str
    lake: str
    landing: str
    orders_api_url: str | None = None
    log_level: str = "INFO"
    retail_policy: str | None = None
    cache_dir: Path | None = None  # machine-wide caches shared by every home; None = off
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        cwd = cwd or Path.cwd()
        file_values = _read_toml(Path(env.get("LAKEBOX_CONFIG", cwd / "lakebox.toml")))
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
            orders_api_url=values["orders_api_url"],
            log_level=(values["log_level"] or "INFO").upper(),
            retail_policy=values["retail_policy"],
            cache_dir=_cache_dir(values["cache_dir"], env, cwd),
            env=env,
        )

    @property
    def warehouse_kind(self) -> str:
        scheme = self.warehouse.split("://", 1)[0].lower() if "://" in self.warehouse else ""
        if scheme in ("postgresql", "postgres"):
            return "postgres"
        if scheme in ("", "duckdb", "file"):
            return "duckdb"
        if scheme in ("spark", "spark+local"):
            return "spark"
        raise ConfigError(
            f"LAKEBOX_WAREHOUSE has an unknown scheme {scheme!r} ({redact(self.warehouse)}); "
            "use a DuckDB file path, postgresql://user@host:5432/db, spark://host:7077 or spark+local://"
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
            "orders_api_url": redact(self.orders_api_url or "(bundled API, started in-process)"),
            "cache_dir": str(self.cache_dir) if self.cache_dir else "off",
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


def _read_toml(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc
    data = data.get("lakebox", data)
    unknown = set(data) - set(_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(_KEYS)}")
    for key, value in data.items():
        if isinstance(value, str) and _URL_PASSWORD.search(value):
            raise ConfigError(
                f"{path}: '{key}' holds a password; secrets come only from the environment "
                f"(set {_KEYS[key]} or PGPASSWORD instead)"
            )
    return {k: str(v) for k, v in data.items()}


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
