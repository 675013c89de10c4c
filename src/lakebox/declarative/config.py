"""`pipeline.toml` as typed data: what a declarative pipeline says, checked before anything runs.

The keys are dlt's rest_api names where dlt has one (docs/pipelines.md lists every key).
`load_config(folder)` reads a pipeline folder's `pipeline.toml` and returns a
`PipelineConfig`, or raises one ConfigError naming every problem (file, line, key, what is
allowed). Nothing here imports a source, the warehouse or a heavy library: `lakebox check`
and `lakebox --help` read fifty of these in milliseconds. The spec builder
(lakebox.declarative.spec) turns a config into the same PipelineSpec a coded pipeline has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

CONFIG_FILE = "pipeline.toml"

SourceType = Literal["rest", "files"]
WriteDisposition = Literal["append", "replace", "merge"]
SchemaMode = Literal["evolve", "freeze", "discard_row", "discard_value"]
ColumnType = Literal["integer", "number", "text", "boolean", "date", "timestamp"]
FileFormat = Literal["csv", "jsonl", "parquet"]
PaginatorType = Literal["header_link", "json_link", "cursor", "offset", "page_number", "single_page"]
AuthType = Literal["bearer", "api_key", "basic"]
Task = Literal["classify", "regress"]

SOURCE_TYPES: tuple[str, ...] = ("rest", "files")
WRITE_DISPOSITIONS: tuple[str, ...] = ("append", "replace", "merge")
SCHEMA_MODES: tuple[str, ...] = ("evolve", "freeze", "discard_row", "discard_value")
COLUMN_TYPES: tuple[str, ...] = ("integer", "number", "text", "boolean", "date", "timestamp")
FILE_FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
PAGINATORS: tuple[str, ...] = ("header_link", "json_link", "cursor", "offset", "page_number", "single_page")
AUTH_TYPES: tuple[str, ...] = ("bearer", "api_key", "basic")
TASKS: tuple[str, ...] = ("classify", "regress")
ESTIMATORS: tuple[str, ...] = ("linear", "ridge", "lasso", "random_forest", "gradient_boosting",
                               "hist_gradient_boosting", "logistic_regression", "knn")
# which rules each column type may carry (besides required and unique, allowed on every type)
RULES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "integer": ("min", "max", "accepted"),
    "number": ("min", "max"),
    "text": ("accepted", "pattern"),
    "boolean": (),
    "date": ("min", "max"),
    "timestamp": ("min", "max"),
}


@dataclass(frozen=True)
class AuthConfig:
    """How requests are signed; every secret is named by its environment variable, never given.

    bearer: `Authorization: Bearer $token_env`; api_key: `name: $key_env` as a header, or
    `?name=$key_env` when location = "query"; basic: `$username_env:$password_env`."""

    type: AuthType
    token_env: str | None = None
    name: str | None = None
    location: Literal["header", "query"] = "header"
    key_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class PaginatorConfig:
    """dlt's paginators. An empty page ends paging where no total is given.

    header_link  the `Link: <...>; rel="next"` header
    json_link    the next page's URL at `next_url_path` in the body
    cursor       the next cursor at `cursor_path` in the body, sent as `cursor_param`
    offset       `offset_param`/`limit_param` (page size `limit`), total at `total_path`
    page_number  `page_param` from `base_page`, the page count at `total_path`
    single_page  one request
    """

    type: PaginatorType = "single_page"
    next_url_path: str | None = None
    cursor_path: str | None = None
    cursor_param: str | None = None
    limit: int | None = None
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_param: str = "page"
    base_page: int = 1
    total_path: str | None = None


@dataclass(frozen=True)
class IncrementalConfig:
    """Ask only for records newer than the newest `cursor_path` seen, as query parameter `param`;
    `initial_value` on the first run."""

    cursor_path: str
    param: str
    initial_value: str | None = None


@dataclass(frozen=True)
class ColumnConfig:
    """One contract column, named by its normalised name (`Country Name` -> `country_name`)."""

    name: str
    type: ColumnType
    required: bool = False
    unique: bool = False
    min: float | str | None = None  # a number; for date/timestamp an ISO date/time
    max: float | str | None = None
    accepted: tuple[str | int, ...] | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class ContractConfig:
    """What a resource's records must hold, and what happens to those that do not.

    freeze         a batch/file with a new, missing or retyped column or a bad row is quarantined whole
    evolve         new columns are added to the raw table (and noted); rules still apply
    discard_row    rows breaking a rule are quarantined as rows; the rest loads; the run ends partial
    discard_value  a bad value becomes NULL; the original is kept in the quarantine item
    """

    schema: SchemaMode = "freeze"
    columns: tuple[ColumnConfig, ...] = ()


@dataclass(frozen=True)
class ResourceConfig:
    """One endpoint or one kind of file: its raw table is `raw.<pipeline>_<name>`.

    rest:  path, params, data_selector, paginator (else the source's), incremental
    files: glob, format, delimiter, header, partition_pattern (a regex whose group 1 is the
           file's date, YYYY-MM-DD)"""

    name: str
    primary_key: tuple[str, ...] = ()
    write_disposition: WriteDisposition = "append"
    version_field: str | None = None
    contract: ContractConfig = field(default_factory=ContractConfig)
    # rest
    path: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    data_selector: str = ""
    paginator: PaginatorConfig | None = None
    incremental: IncrementalConfig | None = None
    # files
    glob: str | None = None
    format: FileFormat = "csv"
    delimiter: str = ","
    header: bool = True
    partition_pattern: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    """Where the records come from: a JSON API (`rest`) or a folder of files (`files`).
    `base_url` is overridden by the setting LAKEBOX_<PIPELINE>_BASE_URL; `landing` defaults
    to `<LAKEBOX_LANDING>/<pipeline>`."""

    type: SourceType
    resources: tuple[ResourceConfig, ...]
    base_url: str | None = None
    auth: AuthConfig | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    paginator: PaginatorConfig | None = None
    landing: str | None = None


@dataclass(frozen=True)
class CandidateConfig:
    estimator: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """A model trained, registered and scored by lakebox's lifecycle from one of the
    pipeline's marts; predictions go to `ml.<name with - as _>_predictions`."""

    name: str
    task: Task
    from_: str  # `from` in the TOML: "schema.table", a mart of this pipeline
    target: str
    features: tuple[str, ...]
    time: str
    key: tuple[str, ...]
    metric: str  # classify: f1_macro | accuracy; regress: mae | mse | r2
    candidates: tuple[CandidateConfig, ...]
    margin: float = 0.01
    baseline: str | None = None

    @property
    def predictions_table(self) -> str:
        return f"ml.{self.name.replace('-', '_')}_predictions"


@dataclass(frozen=True)
class PipelineConfig:
    """A declarative pipeline: its folder's `pipeline.toml`, parsed and checked."""

    name: str  # the folder's name
    folder: Path
    description: str
    source: SourceConfig
    schedule: str | None = None
    models: tuple[ModelConfig, ...] = ()

    @property
    def path(self) -> Path:
        return self.folder / CONFIG_FILE

    def raw_table(self, resource: ResourceConfig) -> str:
        return f"raw.{self.ledger_source(resource)}"

    def ledger_source(self, resource: ResourceConfig) -> str:
        """The resource's name in the ledger, the lake (`raw/<it>/...`) and the raw schema:
        `<pipeline>_<resource>`, or just `<pipeline>` for a resource named after its pipeline."""
        return self.name if resource.name == self.name else f"{self.name}_{resource.name}"


def load_config(folder: Path) -> PipelineConfig:
    """The folder's pipeline.toml, checked; ConfigError lists every problem found."""
    from lakebox.declarative.parse import parse_config

    return parse_config(folder)
