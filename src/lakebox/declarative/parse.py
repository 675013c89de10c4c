"""pipeline.toml -> PipelineConfig: every problem found at once, raised as one ConfigError
(exit 2), each on its own line naming the file, the line, the dotted key and what is allowed.

tomllib gives no line numbers, so `_key_lines` finds each key's line in the text (the key's
own line, else its table's). The key tables here are what the parser knows; the JSON Schema
shipped beside it (pipeline.schema.json, `lakebox schema pipeline`) describes the same keys,
and a test keeps the two equal. A literal secret is refused and never echoed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from lakebox.cron import cron_problem
from lakebox.declarative.config import (
    AUTH_TYPES,
    COLUMN_TYPES,
    CONFIG_FILE,
    ESTIMATORS,
    FILE_FORMATS,
    PAGINATORS,
    RULES_BY_TYPE,
    SCHEMA_MODES,
    SOURCE_TYPES,
    TASKS,
    WRITE_DISPOSITIONS,
    AuthConfig,
    AuthType,
    CandidateConfig,
    ColumnConfig,
    ColumnType,
    ContractConfig,
    IncrementalConfig,
    ModelConfig,
    PaginatorConfig,
    PaginatorType,
    PipelineConfig,
    ResourceConfig,
    SchemaMode,
    SourceConfig,
    SourceType,
    Task,
    WriteDisposition,
)
from lakebox.declarative.names import normalise
from lakebox.errors import ConfigError

TOP_KEYS = ("description", "schedule", "source", "models")
SOURCE_KEYS = ("type", "resources")
SOURCE_KEYS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "rest": ("base_url", "auth", "headers", "paginator"),
    "files": ("landing",),
}
RESOURCE_KEYS = ("name", "primary_key", "write_disposition", "version_field", "contract")
RESOURCE_KEYS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "rest": ("path", "params", "data_selector", "paginator", "incremental"),
    "files": ("glob", "format", "delimiter", "header", "partition_pattern"),
}
AUTH_KEYS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "bearer": ("token_env",),
    "api_key": ("name", "location", "key_env"),
    "basic": ("username_env", "password_env"),
}
AUTH_REQUIRED: dict[str, tuple[str, ...]] = {
    "bearer": ("token_env",), "api_key": ("name", "key_env"), "basic": ("username_env", "password_env")}
PAGINATOR_KEYS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "header_link": (),
    "json_link": ("next_url_path",),
    "cursor": ("cursor_path", "cursor_param"),
    "offset": ("limit", "offset_param", "limit_param", "total_path"),
    "page_number": ("page_param", "base_page", "total_path"),
    "single_page": (),
}
# none: dlt's defaults stand in (next_url_path "next", cursor_path "cursors.next", cursor_param "cursor")
PAGINATOR_REQUIRED: dict[str, tuple[str, ...]] = {}
INCREMENTAL_KEYS = ("cursor_path", "param", "initial_value")
CONTRACT_KEYS = ("schema", "columns")
ALWAYS_RULES = ("required", "unique")
RULES = ("required", "unique", "min", "max", "accepted", "pattern")
COLUMN_KEYS = ("type", *RULES)
MODEL_KEYS = ("name", "task", "from", "target", "features", "time", "key", "metric", "margin", "baseline",
              "candidates")
CANDIDATE_KEYS = ("estimator", "params")
METRICS: dict[str, tuple[str, ...]] = {"classify": ("f1_macro", "accuracy"), "regress": ("mae", "mse", "r2")}
LOCATIONS = ("header", "query")

# a secret written where its variable's name belongs: the key to use instead
SECRET_KEYS = {"token": "token_env", "access_token": "token_env", "bearer": "token_env", "secret": "token_env",
               "client_secret": "token_env", "password": "password_env", "passwd": "password_env",
               "username": "username_env", "user": "username_env", "key": "key_env", "api_key": "key_env",
               "apikey": "key_env"}
_SECRET_HEADER = re.compile(r"auth|token|secret|passw|api[-_]?key|cookie|credential|(^|[-_])key$", re.IGNORECASE)
_SECRET_PARAM = re.compile(r"^(key|api[-_]?key|apikey|access[-_]?token|token|auth|secret|client[-_]?secret|"
                           r"password|passwd)$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODEL_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_TABLE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_LAST_PART = re.compile(r'(\[\d+\]|\.?[A-Za-z0-9_-]+|\.?"(?:[^"\\]|\\.)*")$')


def known_keys() -> frozenset[str]:
    """Every key the parser reads, dotted: `[]` an array's items, `*` a map's values (each a
    named table). The JSON Schema's keys must be the same set (tests/declarative)."""
    paginator = {"type", *(k for keys in PAGINATOR_KEYS_BY_TYPE.values() for k in keys)}
    auth = {"type", *(k for keys in AUTH_KEYS_BY_TYPE.values() for k in keys)}
    resource = {*RESOURCE_KEYS, *(k for keys in RESOURCE_KEYS_BY_TYPE.values() for k in keys)}
    keys = {*TOP_KEYS, *(f"source.{k}" for k in SOURCE_KEYS),
            *(f"source.{k}" for keys in SOURCE_KEYS_BY_TYPE.values() for k in keys)}
    keys |= {f"source.auth.{k}" for k in auth} | {f"source.paginator.{k}" for k in paginator}
    each = "source.resources[]"
    keys |= {f"{each}.{k}" for k in resource} | {f"{each}.paginator.{k}" for k in paginator}
    keys |= {f"{each}.incremental.{k}" for k in INCREMENTAL_KEYS} | {f"{each}.contract.{k}" for k in CONTRACT_KEYS}
    keys |= {f"{each}.contract.columns.*.{k}" for k in COLUMN_KEYS}
    keys |= {f"models[].{k}" for k in MODEL_KEYS} | {f"models[].candidates[].{k}" for k in CANDIDATE_KEYS}
    return frozenset(keys)


def parse_config(folder: Path) -> PipelineConfig:
    """The folder's pipeline.toml, checked; one ConfigError lists every problem found."""
    path = folder / CONFIG_FILE
    shown = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot be read ({exc.strerror}); a declarative pipeline's folder "
                          f"holds {CONFIG_FILE}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        where = f"{shown}:{at[1]}:{at[2]}" if at else shown
        raise ConfigError(f"{where}: not valid TOML: {message[:at.start()] if at else message}") from exc
    check = _Check(shown, text)
    config = check.pipeline(folder, doc)
    if check.found or config is None:
        raise ConfigError(f"{len(check.found)} problem(s) in {shown}:\n  " + "\n  ".join(check.found))
    return config


def _shown(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return os.fspath(path)


def _join(prefix: str, name: str) -> str:
    part = name if _BARE.match(name) else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{prefix}.{part}" if prefix else part


def _q(text: str) -> str:
    """A value quoted as TOML writes it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _allowed(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values) or "none"


_KIND = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a table",
         list: "a list", dt.date: "a date", dt.datetime: "a date-time", dt.time: "a time"}


def _kind(value: object) -> str:
    return next((name for t, name in reversed(_KIND.items()) if isinstance(value, t)), type(value).__name__)


class _Check:
    """The problems found so far, each with the line its key is on."""

    def __init__(self, shown: str, text: str) -> None:
        self.shown = shown
        self.lines = _key_lines(text)
        self.problems: list[tuple[int, str]] = []
        self.given_as_secret: set[str] = set()  # `token = ...` said once, not again as `token_env` missing

    @property
    def found(self) -> list[str]:
        """The problems in the file's order."""
        return [line for _, line in sorted(self.problems, key=lambda p: p[0])]

    def add(self, key: str, message: str) -> None:
        line = self.line(key)
        self.problems.append((line, f"{self.shown}:{line}: {key}: {message}"))

    def line(self, key: str) -> int:
        """The key's line, else the nearest enclosing key's or table's; 1 when none is written."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = _LAST_PART.sub("", key, count=1)
        return 1

    # -- values -------------------------------------------------------------------------

    def unknown(self, doc: Mapping[str, Any], where: str, known: Iterable[str],
                elsewhere: Mapping[str, str] | None = None) -> None:
        """Keys this table does not take: a literal secret, a key of another kind, or a typo."""
        known = tuple(known)
        for name in doc:
            if name in known:
                continue
            key = _join(where, name)
            if name.lower() in SECRET_KEYS:
                self.given_as_secret.add(_join(where, SECRET_KEYS[name.lower()]))
                self.add(key, f"a literal secret (value not shown) is never written in {CONFIG_FILE}; use "
                         f"{SECRET_KEYS[name.lower()]} = \"<VARIABLE>\" in source.auth and set the secret in "
                         "that environment variable")
            elif elsewhere and name in elsewhere:
                self.add(key, elsewhere[name])
            else:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f"did you mean {_q(close[0])}? " if close else ""
                self.add(key, f"unknown key; {hint}allowed: {_allowed(known)}")

    def typed(self, doc: Mapping[str, Any], name: str, where: str, kind: type | tuple[type, ...], expected: str,
              required: str | None = None) -> Any:
        """doc[name] when of `kind`, else None (a problem noted; `required` says what to write when absent)."""
        key = _join(where, name)
        if name not in doc:
            if required is not None and key not in self.given_as_secret:
                self.add(key, f"missing; {required}")
            return None
        value = doc[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            self.add(key, f"{_kind(value)}; expected {expected}")
            return None
        return value

    def text(self, doc: Mapping[str, Any], name: str, where: str, required: str | None = None) -> str | None:
        value: str | None = self.typed(doc, name, where, str, "a string", required)
        if value is not None and not value.strip() and required is not None:
            self.add(_join(where, name), f"empty; {required}")
            return None
        return value

    def choice(self, doc: Mapping[str, Any], name: str, where: str, allowed: tuple[str, ...], what: str,
               required: bool = False) -> str | None:
        value = self.text(doc, name, where, f"allowed: {_allowed(allowed)}" if required else None)
        if value is not None and value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {_q(close[0])}? " if close else ""
            self.add(_join(where, name), f"{_q(value)} is not {what}; {hint}allowed: {_allowed(allowed)}")
            return None
        return value

    def names(self, doc: Mapping[str, Any], name: str, where: str, required: str | None = None,
              column: bool = True) -> tuple[str, ...] | None:
        """A list of column names (a single string stands for a list of one)."""
        value = self.typed(doc, name, where, (list, str), "a list of strings", required)
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        key = _join(where, name)
        if not all(isinstance(v, str) for v in items):
            self.add(key, "expected a list of strings")
            return None
        if required is not None and not items:
            self.add(key, f"empty; {required}")
            return None
        if column:
            for item in items:
                self.column_name(key, item)
        return tuple(items)

    def env_name(self, doc: Mapping[str, Any], name: str, where: str, required: bool) -> str | None:
        example = {"token_env": "EXAMPLE_TOKEN", "key_env": "EXAMPLE_API_KEY", "username_env": "EXAMPLE_USER",
                   "password_env": "EXAMPLE_PASSWORD"}[name]
        value = self.text(doc, name, where, f"the environment variable holding it, e.g. {name} = \"{example}\""
                          if required else None)
        if value is not None and not _ENV_NAME.match(value):
            self.add(_join(where, name), f"not an environment variable's name (value not shown: it may be the "
                     f"secret itself); write the variable's name, e.g. {example}, and set the secret there")
            return None
        return value

    def regex(self, doc: Mapping[str, Any], name: str, where: str) -> str | None:
        value = self.text(doc, name, where)
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            self.add(_join(where, name), f"not a valid regular expression ({exc}); fix it (Python's re syntax)")
            return None
        if name == "partition_pattern" and compiled.groups < 1:
            self.add(_join(where, name), "has no group: its first group (...) must capture the file's date, "
                     r"e.g. '(\d{4}-\d{2}-\d{2})'")
            return None
        return value

    def column_name(self, key: str, name: str) -> bool:
        if normalise(name) != name:
            self.add(key, f"{_q(name)} is not a normalised name: write {_q(normalise(name))} (lower_snake_case, "
                     "as dlt normalises column names)")
            return False
        return True

    def table(self, doc: Mapping[str, Any], name: str, where: str, required: str | None = None
              ) -> Mapping[str, Any] | None:
        value: Mapping[str, Any] | None = self.typed(doc, name, where, dict, "a table", required)
        return value

    # -- the file's tables --------------------------------------------------------------

    def pipeline(self, folder: Path, doc: Mapping[str, Any]) -> PipelineConfig | None:
        self.unknown(doc, "", TOP_KEYS)
        description = self.text(doc, "description", "") or ""
        schedule = self.text(doc, "schedule", "")
        if schedule is not None and (problem := cron_problem(schedule)) is not None:
            self.add("schedule", f"{problem}; e.g. \"0 6 * * *\" (06:00 every day)")
        source_doc = self.table(doc, "source", "", 'a [source] table with type = "rest" or "files"')
        source = self.source(source_doc) if source_doc is not None else None
        models_doc = self.typed(doc, "models", "", list, "a list of tables ([[models]])")
        models = self.models(models_doc) if models_doc is not None else ()
        if source is None:
            return None
        return PipelineConfig(name=folder.name, folder=folder, description=description, source=source,
                              schedule=schedule, models=models)

    def source(self, doc: Mapping[str, Any]) -> SourceConfig | None:
        where = "source"
        kind = self.choice(doc, "type", where, SOURCE_TYPES, "a source type", required=True)
        own = SOURCE_KEYS_BY_TYPE.get(kind or "", ())
        other = {k: f"not a key of a {kind} source; it is for a {t} source" for t, keys in
                 SOURCE_KEYS_BY_TYPE.items() if t != kind for k in keys} if kind else None
        self.unknown(doc, where, SOURCE_KEYS + (own if kind else tuple(k for ks in SOURCE_KEYS_BY_TYPE.values()
                                                                        for k in ks)), other)
        base_url = None
        if kind == "rest":
            base_url = self.text(doc, "base_url", where, 'the API\'s address, e.g. base_url = "https://api.example.org" '
                                 "(the setting LAKEBOX_<PIPELINE>_BASE_URL overrides it)")
            if base_url is not None and not re.match(r"^https?://[^/\s]+", base_url):
                self.add("source.base_url", f"{_q(base_url)} is not an http(s) URL; e.g. \"https://api.example.org\"")
        auth_doc = self.table(doc, "auth", where) if kind == "rest" else None
        auth = self.auth(auth_doc) if auth_doc is not None else None
        headers = self.headers(doc) if kind == "rest" else {}
        paginator = self.paginator(doc, where) if kind == "rest" else None
        landing = self.text(doc, "landing", where) if kind == "files" else None
        resources_doc = self.typed(doc, "resources", where, list, "a list of tables ([[source.resources]])",
                                   "at least one [[source.resources]] table with a name")
        resources: list[ResourceConfig] = []
        if resources_doc is not None:
            if not resources_doc:
                self.add("source.resources", "empty; at least one [[source.resources]] table with a name")
            seen: dict[str, int] = {}
            for i, item in enumerate(resources_doc):
                key = f"source.resources[{i}]"
                if not isinstance(item, dict):
                    self.add(key, f"{_kind(item)}; expected a table ([[source.resources]])")
                    continue
                resource = self.resource(item, key, kind)
                if resource is None:
                    continue
                if resource.name in seen:
                    self.add(f"{key}.name", f"{_q(resource.name)} is also source.resources[{seen[resource.name]}]'s "
                             "name; each resource needs its own (it names the raw table)")
                seen.setdefault(resource.name, i)
                resources.append(resource)
        if kind is None:
            return None
        return SourceConfig(type=cast(SourceType, kind), resources=tuple(resources), base_url=base_url, auth=auth,
                            headers=headers, paginator=paginator, landing=landing)

    def headers(self, doc: Mapping[str, Any]) -> dict[str, str]:
        table = self.table(doc, "headers", "source") or {}
        out = {}
        for name, value in table.items():
            key = _join("source.headers", name)
            if _SECRET_HEADER.search(name):
                self.add(key, "a literal secret is never written in pipeline.toml (value not shown): sign "
                         "requests with source.auth instead, e.g. auth = { type = \"bearer\", token_env = "
                         "\"EXAMPLE_TOKEN\" } or { type = \"api_key\", name = \"X-API-Key\", key_env = ... }")
            elif not isinstance(value, str):
                self.add(key, f"{_kind(value)}; expected a string")
            else:
                out[name] = value
        return out

    def auth(self, doc: Mapping[str, Any]) -> AuthConfig | None:
        where = "source.auth"
        kind = self.choice(doc, "type", where, AUTH_TYPES, "an auth type", required=True)
        if kind is None:
            self.unknown(doc, where, ("type", *(k for ks in AUTH_KEYS_BY_TYPE.values() for k in ks)))
            return None
        own = AUTH_KEYS_BY_TYPE[kind]
        self.unknown(doc, where, ("type", *own), {k: f"not a key of {kind} auth; {kind} takes: {_allowed(own)}"
                                                   for ks in AUTH_KEYS_BY_TYPE.values() for k in ks})
        values: dict[str, Any] = {}
        for name in own:
            if name.endswith("_env"):
                values[name] = self.env_name(doc, name, where, name in AUTH_REQUIRED[kind])
            elif name == "location":
                values[name] = self.choice(doc, name, where, LOCATIONS, "a location") or "header"
            else:
                values[name] = self.text(doc, name, where, "the header or query parameter's name, e.g. "
                                         "name = \"X-API-Key\"" if name in AUTH_REQUIRED[kind] else None)
        return AuthConfig(type=cast(AuthType, kind), **values)

    def paginator(self, doc: Mapping[str, Any], where: str) -> PaginatorConfig | None:
        if "paginator" not in doc:
            return None
        key = f"{where}.paginator"
        value = doc["paginator"]
        if isinstance(value, str):
            value = {"type": value}
            table_form = False
        elif isinstance(value, dict):
            table_form = True
        else:
            self.add(key, f"{_kind(value)}; expected a paginator's type or a table, e.g. "
                     "{ type = \"page_number\", page_param = \"page\" }")
            return None
        kind = self.choice(value, "type", key, PAGINATORS, "a paginator", required=True)
        if kind is None:
            return None
        own = PAGINATOR_KEYS_BY_TYPE[kind]
        if table_form:
            self.unknown(value, key, ("type", *own), {k: f"not a parameter of the {kind} paginator; it takes: "
                                                          f"{_allowed(own)}"
                                                       for ks in PAGINATOR_KEYS_BY_TYPE.values() for k in ks})
        values: dict[str, Any] = {}
        for name in own:
            required = PAGINATOR_REQUIRED.get(kind, ())
            if name in ("limit", "base_page"):
                number = self.typed(value, name, key, int, "an integer")
                if number is not None and (number < 0 or name == "limit" and number == 0):
                    self.add(_join(key, name), f"{number} is too small; expected {'≥ 1' if name == 'limit' else '≥ 0'}")
                elif number is not None:
                    values[name] = number
            else:
                text = self.text(value, name, key, f"the {kind} paginator needs it (it takes: {_allowed(own)})"
                                 if name in required else None)
                if text is not None:
                    values[name] = text
        return PaginatorConfig(type=cast(PaginatorType, kind), **values)

    def resource(self, doc: Mapping[str, Any], where: str, kind: str | None) -> ResourceConfig | None:
        own = RESOURCE_KEYS_BY_TYPE.get(kind or "", ())
        other = {k: f"not a key of a {kind} source's resource; it is for a {t} source" for t, keys in
                 RESOURCE_KEYS_BY_TYPE.items() if t != kind for k in keys} if kind else None
        self.unknown(doc, where, RESOURCE_KEYS + (own if kind else tuple(k for ks in RESOURCE_KEYS_BY_TYPE.values()
                                                                          for k in ks)), other)
        name = self.text(doc, "name", where, 'a name, e.g. name = "readings" (its raw table: '
                         "raw.<pipeline>_<name>)")
        if name is not None and not self.column_name(f"{where}.name", name):
            name = None
        given_key = self.names(doc, "primary_key", where)  # None: absent, or refused already
        primary_key = given_key or ()
        disposition = self.choice(doc, "write_disposition", where, WRITE_DISPOSITIONS, "a write disposition")
        if disposition == "merge" and ("primary_key" not in doc or given_key == ()):
            self.add(f"{where}.write_disposition", "merge needs primary_key (the columns that identify a "
                     "record), e.g. primary_key = [\"id\"]")
        version_field = self.text(doc, "version_field", where)
        if version_field is not None:
            self.column_name(f"{where}.version_field", version_field)
            if disposition == "replace":
                self.add(f"{where}.version_field", 'only for write_disposition = "merge" (it picks the latest '
                         'version of each primary_key) or "append" (a version already loaded is skipped)')
            elif disposition != "merge" and (given_key is None or len(given_key) != 1):
                self.add(f"{where}.version_field", "append with a version_field needs a primary_key of one column "
                         "(a version is that column and version_field), e.g. primary_key = [\"id\"]")
        contract_doc = self.table(doc, "contract", where)
        contract = self.contract(contract_doc, f"{where}.contract") if contract_doc is not None else ContractConfig()
        values: dict[str, Any] = {}
        if kind == "rest":
            values["path"] = self.text(doc, "path", where, 'the endpoint\'s path under base_url, e.g. '
                                       'path = "/v1/readings"')
            values["params"] = self.params(doc, where)
            values["data_selector"] = self.text(doc, "data_selector", where) or ""
            values["paginator"] = self.paginator(doc, where)
            incremental = self.table(doc, "incremental", where)
            values["incremental"] = self.incremental(incremental, f"{where}.incremental") if incremental else None
        elif kind == "files":
            values["glob"] = self.text(doc, "glob", where, 'which files of the landing folder, e.g. glob = "*.csv"')
            values["format"] = self.choice(doc, "format", where, FILE_FORMATS, "a file format") or "csv"
            delimiter = self.text(doc, "delimiter", where)
            if delimiter is not None and len(delimiter) != 1:
                self.add(f"{where}.delimiter", f"{_q(delimiter)} is not one character; e.g. \",\", \";\" or \"\\t\"")
            elif delimiter is not None:
                values["delimiter"] = delimiter
            header = self.typed(doc, "header", where, bool, "true or false")
            if header is not None:
                values["header"] = header
            values["partition_pattern"] = self.regex(doc, "partition_pattern", where)
        if name is None:
            return None
        return ResourceConfig(name=name, primary_key=primary_key,
                              write_disposition=cast(WriteDisposition, disposition or "append"),
                              version_field=version_field, contract=contract, **values)

    def params(self, doc: Mapping[str, Any], where: str) -> dict[str, Any]:
        table = self.table(doc, "params", where) or {}
        out: dict[str, Any] = {}
        for name, value in table.items():
            key = _join(f"{where}.params", name)
            if _SECRET_PARAM.match(name):
                self.add(key, "a literal secret is never written in pipeline.toml (value not shown): use "
                         "source.auth = { type = \"api_key\", name = \"" + name + "\", location = \"query\", "
                         "key_env = \"EXAMPLE_API_KEY\" }")
            elif isinstance(value, (dt.date, dt.datetime)):
                out[name] = value.isoformat()
            elif isinstance(value, (str, int, float, bool)):
                out[name] = value
            else:
                self.add(key, f"{_kind(value)}; expected a string, number or true/false")
        return out

    def incremental(self, doc: Mapping[str, Any], where: str) -> IncrementalConfig | None:
        self.unknown(doc, where, INCREMENTAL_KEYS)
        cursor_path = self.text(doc, "cursor_path", where, 'the records\' field to follow, e.g. '
                                'cursor_path = "updated_at"')
        param = self.text(doc, "param", where, 'the query parameter it is sent as, e.g. param = "since"')
        initial = self.typed(doc, "initial_value", where, (str, int, dt.date, dt.datetime), "a string, an integer "
                             "or a date")
        initial_value = initial.isoformat() if isinstance(initial, (dt.date, dt.datetime)) else initial
        if cursor_path is None or param is None:
            return None
        return IncrementalConfig(cursor_path=cursor_path, param=param,
                                 initial_value=None if initial_value is None else str(initial_value))

    def contract(self, doc: Mapping[str, Any], where: str) -> ContractConfig:
        self.unknown(doc, where, CONTRACT_KEYS)
        mode = self.choice(doc, "schema", where, SCHEMA_MODES, "a schema mode") or "freeze"
        columns_doc = self.table(doc, "columns", where) or {}
        columns = []
        for name, rules in columns_doc.items():
            key = _join(f"{where}.columns", name)
            if not isinstance(rules, dict):
                self.add(key, f"{_kind(rules)}; expected a table, e.g. {{ type = \"text\", required = true }}")
                continue
            if not self.column_name(key, name):
                continue
            column = self.column(name, rules, key)
            if column is not None:
                columns.append(column)
        return ContractConfig(schema=cast(SchemaMode, mode), columns=tuple(columns))

    def column(self, name: str, doc: Mapping[str, Any], where: str) -> ColumnConfig | None:
        kind = self.choice(doc, "type", where, COLUMN_TYPES, "a column type", required=True)
        if kind is None:
            self.unknown(doc, where, COLUMN_KEYS)
            return None
        own = (*ALWAYS_RULES, *RULES_BY_TYPE[kind])
        self.unknown(doc, where, ("type", *own), {r: f"not a rule a {kind} column can have; {kind} takes: "
                                                      f"{_allowed(own)}" for r in RULES})
        values: dict[str, Any] = {}
        for rule in ALWAYS_RULES:
            flag = self.typed(doc, rule, where, bool, "true or false")
            if flag is not None:
                values[rule] = flag
        for bound in ("min", "max"):
            if bound in own and bound in doc:
                values[bound] = self.bound(doc[bound], kind, _join(where, bound))
        low, high = values.get("min"), values.get("max")
        if low is not None and high is not None and _when(low, kind) > _when(high, kind):
            self.add(_join(where, "min"), f"{low} is above max {high}; no value could pass")
        if "accepted" in own and "accepted" in doc:
            values["accepted"] = self.accepted(doc["accepted"], kind, _join(where, "accepted"))
        if "pattern" in own:
            values["pattern"] = self.regex(doc, "pattern", where)
        return ColumnConfig(name=name, type=cast(ColumnType, kind), **values)

    def bound(self, value: Any, kind: str, key: str) -> float | str | None:
        """A min or max: a number for numeric columns, an ISO date or date-time for the others."""
        if kind in ("integer", "number"):
            want = (int,) if kind == "integer" else (int, float)
            if isinstance(value, bool) or not isinstance(value, want):
                self.add(key, f"{_kind(value)}; expected {'an integer' if kind == 'integer' else 'a number'}")
                return None
            return cast(float, value)
        example = "2024-01-01" if kind == "date" else "2024-01-01T00:00:00"
        if isinstance(value, dt.date) and not (kind == "date" and isinstance(value, dt.datetime)):
            return value.isoformat()
        if isinstance(value, str) and _when(value, kind) is not None:
            return value
        shown = _q(value) if isinstance(value, str) else _kind(value)
        self.add(key, f"{shown} is not an ISO {kind}; expected e.g. {example}")
        return None

    def accepted(self, value: Any, kind: str, key: str) -> tuple[str | int, ...] | None:
        want = int if kind == "integer" else str
        if not isinstance(value, list) or not all(isinstance(v, want) and not isinstance(v, bool) for v in value):
            example = "[1, 2, 3]" if want is int else '["a", "b"]'
            self.add(key, f"expected a list of {'integers' if want is int else 'strings'}, e.g. {example}")
            return None
        if not value:
            self.add(key, "empty: no value could pass; list the accepted values")
            return None
        return tuple(value)

    def models(self, doc: list[Any]) -> tuple[ModelConfig, ...]:
        models = []
        seen: dict[str, int] = {}
        for i, item in enumerate(doc):
            where = f"models[{i}]"
            if not isinstance(item, dict):
                self.add(where, f"{_kind(item)}; expected a table ([[models]])")
                continue
            model = self.model(item, where)
            if model is None:
                continue
            if model.name in seen:
                self.add(f"{where}.name", f"{_q(model.name)} is also models[{seen[model.name]}]'s name; each model "
                         "needs its own (it names its registered model and predictions table)")
            seen.setdefault(model.name, i)
            models.append(model)
        return tuple(models)

    def model(self, doc: Mapping[str, Any], where: str) -> ModelConfig | None:
        self.unknown(doc, where, MODEL_KEYS)
        name = self.text(doc, "name", where, 'e.g. name = "pm25-forecast"')
        if name is not None and not _MODEL_NAME.match(name):
            self.add(f"{where}.name", f"{_q(name)}: use lowercase letters, digits, - and _, starting with a letter "
                     "(its predictions go to ml.<name with - as _>_predictions)")
            name = None
        task = self.choice(doc, "task", where, TASKS, "a task", required=True)
        from_ = self.text(doc, "from", where, 'the mart it learns from, e.g. from = "analytics.pm25_features"')
        if from_ is not None and not _TABLE.match(from_):
            self.add(f"{where}.from", f"{_q(from_)} is not \"schema.table\"; e.g. \"analytics.pm25_features\"")
            from_ = None
        target = self.text(doc, "target", where, "the column to predict")
        features = self.names(doc, "features", where, "the columns it learns from, e.g. features = [\"hour\"]")
        if target is not None and features and target in features:
            self.add(f"{where}.features", f"holds the target {_q(target)}; a model cannot learn from what it predicts")
        time = self.text(doc, "time", where, "the column of the time split and drift windows")
        key = self.names(doc, "key", where, "the columns that identify a prediction, e.g. key = [\"id\"]")
        metrics = METRICS.get(task or "", tuple(m for ms in METRICS.values() for m in ms))
        metric = self.choice(doc, "metric", where, metrics, f"a {task} metric" if task else "a metric")
        margin = self.typed(doc, "margin", where, (int, float), "a number")
        if margin is not None and margin < 0:
            self.add(f"{where}.margin", f"{margin} is below 0; expected a number ≥ 0, e.g. 0.01")
        baseline = self.text(doc, "baseline", where)
        candidates = self.candidates(doc, where)
        if None in (name, task, from_, target, features, time, key, candidates):
            return None
        return ModelConfig(name=cast(str, name), task=cast(Task, task), from_=cast(str, from_),
                           target=cast(str, target), features=cast(tuple[str, ...], features), time=cast(str, time),
                           key=cast(tuple[str, ...], key), metric=metric or METRICS[cast(str, task)][0],
                           candidates=cast(tuple[CandidateConfig, ...], candidates),
                           margin=0.01 if margin is None else float(margin), baseline=baseline)

    def candidates(self, doc: Mapping[str, Any], where: str) -> tuple[CandidateConfig, ...] | None:
        items = self.typed(doc, "candidates", where, list, "a list of tables",
                           'e.g. candidates = [ { estimator = "ridge" } ]')
        if items is None:
            return None
        if not items:
            self.add(f"{where}.candidates", f'empty; e.g. candidates = [ {{ estimator = "ridge" }} ]; estimators: '
                     f"{_allowed(ESTIMATORS)}")
            return None
        out = []
        for i, item in enumerate(items):
            key = f"{where}.candidates[{i}]"
            if not isinstance(item, dict):
                self.add(key, f'{_kind(item)}; expected a table, e.g. {{ estimator = "ridge" }}')
                continue
            self.unknown(item, key, CANDIDATE_KEYS)
            estimator = self.choice(item, "estimator", key, ESTIMATORS, "an estimator", required=True)
            params = self.table(item, "params", key) or {}
            if estimator is not None:
                out.append(CandidateConfig(estimator=estimator, params=dict(params)))
        return tuple(out) if len(out) == len(items) else None


def _when(value: float | str, kind: str) -> Any:
    """A bound as a comparable value: the number, or the parsed date/date-time (None: not ISO)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = dt.date.fromisoformat(value) if kind == "date" else dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None) if isinstance(parsed, dt.datetime) else parsed


_HEADER = re.compile(r"^\s*(\[\[?)([^\[\]]+)\]\]?\s*(#.*)?$")
_PART_TEXT = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART_TEXT}(?:\s*\.\s*{_PART_TEXT})*)\s*=(.*)$")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"((?:[^"\\]|\\.)*)"|'([^']*)'""")


def _parts(dotted: str) -> list[str]:
    out = []
    for match in _PART.finditer(dotted):
        if match[1] is not None:
            out.append(match[1].encode().decode("unicode_escape") if "\\" in match[1] else match[1])
        else:
            out.append(match[2] if match[2] is not None else match[0])
    return out


def _key_lines(text: str) -> dict[str, int]:
    """Each dotted key (as problems name them: `source.resources[0].paginator`) -> the line it
    is written on; tables of arrays are counted, the first mention wins."""
    lines: dict[str, int] = {}
    arrays: dict[str, int] = {}  # an array of tables (its key, indexes resolved) -> tables so far
    table = ""
    in_string: str | None = None
    array_key: str | None = None  # a multi-line array's key: its inline tables, one a line, are its items
    array_items = 0

    def resolve(parts: list[str]) -> str:
        out = ""
        for part in parts:
            out = _join(out, part)
            if out in arrays:
                out += f"[{arrays[out] - 1}]"
        return out

    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        if array_key is not None:
            stripped = line.strip()
            if stripped.startswith("{"):
                lines.setdefault(f"{array_key}[{array_items}]", number)
                array_items += 1
            if stripped.startswith("]"):
                array_key = None
            continue
        header = _HEADER.match(line)
        if header:
            parts = _parts(header[2])
            if header[1] == "[[":
                base = _join(resolve(parts[:-1]), parts[-1])
                arrays[base] = arrays.get(base, 0) + 1
                table = f"{base}[{arrays[base] - 1}]"
            else:
                table = resolve(parts)
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if not key:
            continue
        full = table
        for part in _parts(key[1]):
            full = _join(full, part)
            lines.setdefault(full, number)
        value = key[2].strip()
        for quote in ('"""', "'''"):
            if value.count(quote) % 2 == 1:
                in_string = quote
        if value.startswith("[") and value.count("[") > value.count("]"):
            array_key, array_items = full, 0
    return lines
