"""pipeline.toml checked before anything runs: the issue's full example and other valid
configs parse; every refused config is named with its file, line, dotted key and what is
allowed (a literal secret never echoed); `lakebox check` and `lakebox run` exit 2 on them."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from lakebox.declarative.config import load_config
from lakebox.errors import ConfigError
from tests.conftest import run_cli

SECRET = "s3cr3t-VALUE"

# the issue's example, as written there
FULL = '''description = "Hourly air-quality readings"
schedule = "0 6 * * *"                 # optional: a Dagster schedule under lakebox serve

[source]
type = "rest"                          # rest | files
base_url = "https://api.example.org"   # also a setting: LAKEBOX_<NAME>_BASE_URL overrides it
auth = { type = "bearer", token_env = "EXAMPLE_TOKEN" }
  # bearer (token_env) | api_key (name, location = "header"|"query", key_env) | basic (username_env, password_env)
headers = { Accept = "application/json" }

[[source.resources]]
name = "readings"                      # its raw table: raw.<pipeline>_<resource>
path = "/v1/readings"
params = { city = "Lisbon" }
data_selector = "data"                 # dotted path to the records; "" = the body is the list
primary_key = ["measured_at"]
write_disposition = "merge"            # append | replace | merge (latest version per primary_key)
version_field = "updated_at"           # merge: which version is latest (else the later batch)
paginator = { type = "page_number", page_param = "page", total_path = "total_pages" }
  # header_link | json_link (next_url_path) | cursor (cursor_path, cursor_param)
  # | offset (limit, offset_param, limit_param, total_path) | page_number (page_param, base_page, total_path)
  # | single_page; an empty page ends paging where no total is given
incremental = { cursor_path = "measured_at", param = "since", initial_value = "2024-01-01" }

[source.resources.contract]
schema = "freeze"                      # evolve | freeze | discard_row | discard_value
columns.measured_at = { type = "timestamp", required = true, unique = true }
columns.pm25 = { type = "number", min = 0, max = 1000 }
columns.flag = { type = "text", accepted = ["a", "b"] }
  # types: integer | number | text | boolean | date | timestamp; rules: required, unique, min, max, accepted, pattern

[[models]]
name = "pm25-forecast"
task = "regress"                       # classify | regress
from = "analytics.pm25_features"       # a mart of this pipeline
target = "pm25"
features = ["hour", "weekday", "lag1"]
time = "measured_at"                   # the time split and drift windows
key = ["measured_at"]
metric = "mae"                         # classify: f1_macro | accuracy
margin = 0.01
baseline = "lag1"                      # regress: the column the model must beat (else a majority / last-value baseline)
candidates = [ { estimator = "ridge" }, { estimator = "random_forest", params = { n_estimators = 200 } } ]
  # estimators from an allow-list: linear, ridge, lasso, random_forest, gradient_boosting,
  # hist_gradient_boosting, logistic_regression, knn
'''

REST = '''description = "Readings"

[source]
type = "rest"
base_url = "https://api.example.org"
auth = { type = "bearer", token_env = "EXAMPLE_TOKEN" }
headers = { Accept = "application/json" }

[[source.resources]]
name = "readings"
path = "/v1/readings"
primary_key = ["id"]
write_disposition = "merge"
paginator = { type = "page_number", page_param = "page", total_path = "total_pages" }

[source.resources.contract]
schema = "freeze"
columns.id = { type = "integer", required = true, unique = true }
columns.pm25 = { type = "number", min = 0, max = 1000 }
columns.flag = { type = "text", accepted = ["a", "b"] }

[[models]]
name = "pm25-forecast"
task = "regress"
from = "analytics.pm25_features"
target = "pm25"
features = ["hour", "lag1"]
time = "measured_at"
key = ["id"]
metric = "mae"
candidates = [ { estimator = "ridge" } ]
'''

FILES = r'''description = "Shop sales"

[source]
type = "files"

[[source.resources]]
name = "sales"
glob = "sales_*.csv"
format = "csv"
partition_pattern = 'sales_(\d{4}-\d{2}-\d{2})\.csv'
'''

VALID = {
    "issue-example": FULL,
    "rest": REST,
    "files": FILES,
    "append-with-version": FILES + 'primary_key = ["id"]\nversion_field = "updated_at"\n',
    "rest-minimal": '''[source]
type = "rest"
base_url = "http://127.0.0.1:8000"
paginator = "single_page"

[[source.resources]]
name = "items"
path = "/items"
data_selector = ""
''',
    "api-key-offset-incremental": '''description = "Events"
schedule = "@hourly"

[source]
type = "rest"
base_url = "https://api.example.org/v2"
auth = { type = "api_key", name = "api_key", location = "query", key_env = "EVENTS_KEY" }

[[source.resources]]
name = "events"
path = "/events"
params = { since = 2024-01-01, limit = 100, active = true }
data_selector = "result.items"
paginator = { type = "offset", limit = 100, offset_param = "skip", limit_param = "take", total_path = "total" }
incremental = { cursor_path = "updated_at", param = "since", initial_value = 2024-01-01 }
write_disposition = "replace"
''',
    "basic-cursor-json-link": '''[source]
type = "rest"
base_url = "https://api.example.org"
auth = { type = "basic", username_env = "SHOP_USER", password_env = "SHOP_PASSWORD" }
paginator = { type = "header_link" }

[[source.resources]]
name = "orders"
path = "/orders"
paginator = { type = "cursor", cursor_path = "meta.next", cursor_param = "cursor" }
primary_key = "order_id"
write_disposition = "merge"
version_field = "updated_at"

[[source.resources]]
name = "customers"
path = "/customers"
paginator = { type = "json_link", next_url_path = "links.next" }

[[source.resources]]
name = "stores"
path = "/stores"
''',
    "files-every-format": r'''description = "Landed files"

[source]
type = "files"
landing = "/srv/drop/shop"

[[source.resources]]
name = "daily_sales"
glob = "sales_*.csv"
delimiter = ";"
header = false
primary_key = ["sale_id"]
write_disposition = "merge"

[source.resources.contract]
schema = "discard_row"
columns.sale_id = { type = "integer", required = true, unique = true, accepted = [1, 2, 3] }
columns.day = { type = "date", min = 2020-01-01, max = "2030-12-31" }
columns.at = { type = "timestamp", min = "2020-01-01T00:00:00", max = 2030-12-31T23:59:59Z }
columns.code = { type = "text", pattern = '^[A-Z]{3}$' }
columns.paid = { type = "boolean", required = true }

[[source.resources]]
name = "events"
glob = "*.jsonl"
format = "jsonl"
contract = { schema = "evolve" }

[[source.resources]]
name = "stock"
glob = "stock/*.parquet"
format = "parquet"
partition_pattern = '(\d{4}-\d{2}-\d{2})'
contract = { schema = "discard_value", columns = { qty = { type = "integer", min = 0 } } }
''',
    "classifier": '''[source]
type = "files"

[[source.resources]]
name = "tickets"
glob = "*.csv"

[[models]]
name = "churn"
task = "classify"
from = "analytics.customer_features"
target = "churned"
features = ["orders", "days_since"]
time = "as_of"
key = ["customer_id"]
margin = 0
candidates = [
  { estimator = "logistic_regression", params = { C = 0.5 } },
  { estimator = "hist_gradient_boosting" },
]

[[models]]
name = "spend_forecast"
task = "regress"
from = "analytics.customer_features"
target = "spend"
features = ["orders"]
time = "as_of"
key = ["customer_id"]
metric = "r2"
baseline = "last_spend"
candidates = [ { estimator = "knn", params = { n_neighbors = 5 } } ]
''',
}


def write_pipeline(root: Path, name: str, text: str) -> Path:
    folder = root / "pipelines" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.toml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("case", sorted(VALID))
def test_a_valid_config_parses(case: str, tmp_path: Path) -> None:
    config = load_config(write_pipeline(tmp_path, "air", VALID[case]))
    assert config.name == "air" and config.source.resources


def test_the_issues_full_example_parses_to_its_values(tmp_path: Path) -> None:
    config = load_config(write_pipeline(tmp_path, "air", FULL))
    assert (config.description, config.schedule) == ("Hourly air-quality readings", "0 6 * * *")
    source = config.source
    assert (source.type, source.base_url, dict(source.headers)) == ("rest", "https://api.example.org",
                                                                     {"Accept": "application/json"})
    assert source.auth is not None and (source.auth.type, source.auth.token_env) == ("bearer", "EXAMPLE_TOKEN")
    (readings,) = source.resources
    assert config.raw_table(readings) == "raw.air_readings"
    assert (readings.path, dict(readings.params), readings.data_selector) == ("/v1/readings", {"city": "Lisbon"}, "data")
    assert (readings.primary_key, readings.write_disposition, readings.version_field) == (
        ("measured_at",), "merge", "updated_at")
    assert readings.paginator is not None
    assert (readings.paginator.type, readings.paginator.page_param, readings.paginator.total_path) == (
        "page_number", "page", "total_pages")
    assert readings.incremental is not None
    assert (readings.incremental.cursor_path, readings.incremental.param, readings.incremental.initial_value) == (
        "measured_at", "since", "2024-01-01")
    columns = {c.name: c for c in readings.contract.columns}
    assert readings.contract.schema == "freeze" and list(columns) == ["measured_at", "pm25", "flag"]
    assert (columns["measured_at"].type, columns["measured_at"].required, columns["measured_at"].unique) == (
        "timestamp", True, True)
    assert (columns["pm25"].min, columns["pm25"].max, columns["flag"].accepted) == (0, 1000, ("a", "b"))
    (model,) = config.models
    assert (model.name, model.task, model.from_, model.target, model.time, model.metric, model.margin,
            model.baseline) == ("pm25-forecast", "regress", "analytics.pm25_features", "pm25", "measured_at", "mae",
                                0.01, "lag1")
    assert (model.features, model.key) == (("hour", "weekday", "lag1"), ("measured_at",))
    assert [(c.estimator, dict(c.params)) for c in model.candidates] == [
        ("ridge", {}), ("random_forest", {"n_estimators": 200})]
    assert model.predictions_table == "ml.pm25_forecast_predictions"


def test_toml_dates_and_defaults_become_the_config_s_values(tmp_path: Path) -> None:
    events = load_config(write_pipeline(tmp_path, "ev", VALID["api-key-offset-incremental"])).source.resources[0]
    assert events.incremental is not None and events.incremental.initial_value == "2024-01-01"
    assert dict(events.params) == {"since": "2024-01-01", "limit": 100, "active": True}
    files = load_config(write_pipeline(tmp_path, "fi", VALID["files-every-format"])).source.resources
    columns = {c.name: c for c in files[0].contract.columns}
    assert (columns["day"].min, columns["day"].max) == ("2020-01-01", "2030-12-31")
    assert columns["at"].max == dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.UTC).isoformat()
    assert (files[0].delimiter, files[0].header, files[1].format, files[2].contract.schema) == (
        ";", False, "jsonl", "discard_value")
    models = load_config(write_pipeline(tmp_path, "cl", VALID["classifier"])).models
    assert [m.metric for m in models] == ["f1_macro", "r2"] and models[0].margin == 0.0


# (base, text replaced, its replacement, the dotted key named, the text on the line named, what the message says)
Case = tuple[str, str, str, str, str, tuple[str, ...]]
PAGINATORS = "allowed: header_link, json_link, cursor, offset, page_number, single_page"
PAGE = 'paginator = { type = "page_number", page_param = "page", total_path = "total_pages" }'
AUTH = 'auth = { type = "bearer", token_env = "EXAMPLE_TOKEN" }'
R0 = "source.resources[0]"
PM25 = 'columns.pm25 = { type = "number", min = 0, max = 1000 }'
REFUSED: dict[str, Case] = {
    "unknown top key": (REST, 'description = "Readings"', 'descripton = "Readings"', "descripton", "descripton",
                        ("unknown key", 'did you mean "description"?',
                         "allowed: description, schedule, source, models")),
    "unknown resource key": (REST, 'path = "/v1/readings"', 'path = "/v1/readings"\ndata_selecter = "data"',
                             f"{R0}.data_selecter", "data_selecter", ('did you mean "data_selector"?',
                                                                      "allowed: name, primary_key")),
    "unknown source key": (REST, 'headers = {', 'header = {', "source.header", "header = {",
                           ('did you mean "headers"?', "allowed: type, resources, base_url, auth, headers, paginator")),
    "wrong type": (REST, 'primary_key = ["id"]', "primary_key = 5", f"{R0}.primary_key", "primary_key = 5",
                   ("an integer; expected a list of strings",)),
    "wrong type bool": (FILES, 'format = "csv"', 'format = "csv"\nheader = "yes"', f"{R0}.header", 'header = "yes"',
                        ("a string; expected true or false",)),
    "wrong type table": (FILES, FILES[FILES.index("[source]"):], 'source = "files"\n', "source", "source =",
                         ("a string; expected a table",)),
    "missing base_url": (REST, 'base_url = "https://api.example.org"\n', "", "source.base_url", "[source]",
                         ("missing", 'base_url = "https://api.example.org"', "LAKEBOX_<PIPELINE>_BASE_URL")),
    "bad base_url": (REST, '"https://api.example.org"', '"api.example.org"', "source.base_url", "base_url",
                     ("is not an http(s) URL",)),
    "missing path": (REST, 'path = "/v1/readings"\n', "", f"{R0}.path", "[[source.resources]]",
                     ("missing", 'path = "/v1/readings"')),
    "missing glob": (FILES, 'glob = "sales_*.csv"\n', "", f"{R0}.glob", "[[source.resources]]",
                     ("missing", 'glob = "*.csv"')),
    "missing resources": (FILES, FILES[FILES.index("[[source"):], "", "source.resources", "[source]",
                          ("missing", "[[source.resources]]")),
    "missing source": (FILES, FILES[FILES.index("[source]"):], "", "source", "description",
                       ("missing", '[source] table with type = "rest" or "files"')),
    "missing resource name": (FILES, 'name = "sales"\n', "", f"{R0}.name", "[[source.resources]]",
                              ("missing", 'name = "readings"')),
    "unknown source type": (REST, 'type = "rest"', 'type = "graphql"', "source.type", 'type = "graphql"',
                            ('"graphql" is not a source type', "allowed: rest, files")),
    "unknown paginator": (REST, '"page_number"', '"pages"', f"{R0}.paginator.type", "paginator",
                          ('"pages" is not a paginator', PAGINATORS)),
    "unknown paginator string": (REST, PAGE, 'paginator = "next_page"', f"{R0}.paginator.type", "paginator",
                                 ('"next_page" is not a paginator', PAGINATORS)),
    "paginator not a table": (REST, PAGE, "paginator = 3", f"{R0}.paginator", "paginator",
                              ("an integer; expected a paginator's type or a table",)),
    "paginator param it does not take": (
        REST, PAGE, 'paginator = { type = "cursor", cursor_path = "next", cursor_param = "c", page_param = "p" }',
        f"{R0}.paginator.page_param", "paginator",
        ("not a parameter of the cursor paginator", "it takes: cursor_path, cursor_param")),
    "paginator limit of 0": (REST, PAGE, 'paginator = { type = "offset", limit = 0 }', f"{R0}.paginator.limit",
                             "paginator", ("0 is too small; expected ≥ 1",)),
    "unknown auth": (REST, '"bearer"', '"oauth"', "source.auth.type", "auth =",
                     ('"oauth" is not an auth type', "allowed: bearer, api_key, basic")),
    "auth without its env": (REST, AUTH, 'auth = { type = "basic", username_env = "SHOP_USER" }',
                             "source.auth.password_env", "auth =", ("missing", 'password_env = "EXAMPLE_PASSWORD"')),
    "api_key auth without name": (REST, AUTH, 'auth = { type = "api_key", key_env = "K" }', "source.auth.name",
                                  "auth =", ("missing", 'name = "X-API-Key"')),
    "auth key of another type": (REST, AUTH, 'auth = { type = "bearer", token_env = "T", key_env = "K" }',
                                 "source.auth.key_env", "auth =", ("not a key of bearer auth", "bearer takes: token_env")),
    "auth location": (REST, AUTH, 'auth = { type = "api_key", name = "k", key_env = "K", location = "body" }',
                      "source.auth.location", "auth =", ('"body" is not a location', "allowed: header, query")),
    "unknown schema mode": (REST, 'schema = "freeze"', 'schema = "strict"', f"{R0}.contract.schema", "schema =",
                            ('"strict" is not a schema mode', "allowed: evolve, freeze, discard_row, discard_value")),
    "unknown write disposition": (REST, '"merge"', '"upsert"', f"{R0}.write_disposition", "write_disposition",
                                  ('"upsert" is not a write disposition', "allowed: append, replace, merge")),
    "merge without primary_key": (REST, 'primary_key = ["id"]\n', "", f"{R0}.write_disposition", "write_disposition",
                                  ("merge needs primary_key", 'primary_key = ["id"]')),
    "version_field with replace": (FILES, 'format = "csv"',
                                   'format = "csv"\nwrite_disposition = "replace"\nversion_field = "updated_at"',
                                   f"{R0}.version_field", "version_field", ('only for write_disposition = "merge"',)),
    "version_field with append, no primary_key": (FILES, 'format = "csv"', 'format = "csv"\nversion_field = "updated_at"',
                                                  f"{R0}.version_field", "version_field",
                                                  ("append with a version_field needs a primary_key of one column",)),
    "unknown file format": (FILES, 'format = "csv"', 'format = "xlsx"', f"{R0}.format", "format",
                            ('"xlsx" is not a file format', "allowed: csv, jsonl, parquet")),
    "delimiter of two characters": (FILES, 'format = "csv"', 'delimiter = ";;"', f"{R0}.delimiter", "delimiter",
                                    ("is not one character",)),
    "unknown column type": (REST, '{ type = "number", min', '{ type = "float", min', f"{R0}.contract.columns.pm25.type",
                            "columns.pm25", ('"float" is not a column type',
                                             "allowed: integer, number, text, boolean, date, timestamp")),
    "unknown rule": (REST, "min = 0, max", "mn = 0, max", f"{R0}.contract.columns.pm25.mn", "columns.pm25",
                     ("unknown key", 'did you mean "min"?', "allowed: type, required, unique, min, max")),
    "rule the type cannot have": (REST, 'columns.flag = { type = "text", accepted = ["a", "b"] }',
                                  'columns.flag = { type = "text", min = 0 }', f"{R0}.contract.columns.flag.min",
                                  "columns.flag", ("not a rule a text column can have",
                                                   "text takes: required, unique, accepted, pattern")),
    "min of an integer not an integer": (REST, "required = true, unique = true }",
                                         "required = true, unique = true, min = 1.5 }",
                                         f"{R0}.contract.columns.id.min", "columns.id",
                                         ("a number; expected an integer",)),
    "min above max": (REST, "min = 0, max = 1000", "min = 10, max = 1", f"{R0}.contract.columns.pm25.min",
                      "columns.pm25", ("10 is above max 1",)),
    "date min not ISO": (REST, PM25, 'columns.day = { type = "date", min = "yesterday" }',
                         f"{R0}.contract.columns.day.min", "columns.day",
                         ('"yesterday" is not an ISO date', "2024-01-01")),
    "accepted of the wrong type": (REST, PM25, 'columns.size = { type = "integer", accepted = ["s", "m"] }',
                                   f"{R0}.contract.columns.size.accepted", "columns.size",
                                   ("expected a list of integers",)),
    "column not a table": (REST, PM25, 'columns.pm25 = "number"', f"{R0}.contract.columns.pm25", "columns.pm25",
                           ("a string; expected a table",)),
    "bad regex in pattern": (REST, 'accepted = ["a", "b"]', 'pattern = "([a-z"', f"{R0}.contract.columns.flag.pattern",
                             "columns.flag", ("not a valid regular expression (unterminated character set at position 1)",)),
    "bad regex in partition_pattern": (FILES, r"'sales_(\d{4}-\d{2}-\d{2})\.csv'", r"'(\d{4'",
                                       f"{R0}.partition_pattern", "partition_pattern",
                                       ("not a valid regular expression",)),
    "partition_pattern without a group": (FILES, r"'sales_(\d{4}-\d{2}-\d{2})\.csv'", r"'sales_\d+\.csv'",
                                          f"{R0}.partition_pattern", "partition_pattern", ("has no group",)),
    "two resources of one name": (FILES, "", "", "source.resources[1].name", 'name = "sales"',
                                  ('"sales" is also source.resources[0]\'s name',)),
    "resource name not lower_snake_case": (REST, 'name = "readings"', 'name = "Air Readings"', f"{R0}.name",
                                           "Air Readings", ('"Air Readings" is not a normalised name',
                                                            'write "air_readings"')),
    "column name not normalised": (REST, "columns.pm25 =", 'columns."PM 2.5" =',
                                   f'{R0}.contract.columns."PM 2.5"', "PM 2.5", ('write "pm_2_5"',)),
    "primary_key not normalised": (REST, 'primary_key = ["id"]', 'primary_key = ["Order ID"]', f"{R0}.primary_key",
                                   "primary_key", ('write "order_id"',)),
    "literal token": (REST, AUTH, f'auth = {{ type = "bearer", token = "{SECRET}" }}', "source.auth.token", "auth =",
                      ("literal secret", 'use token_env = "<VARIABLE>"')),
    "literal password": (REST, AUTH, f'auth = {{ type = "basic", username_env = "U", password = "{SECRET}" }}',
                         "source.auth.password", "auth =", ("literal secret", "use password_env")),
    "literal key": (REST, AUTH, f'auth = {{ type = "api_key", name = "X-Key", key = "{SECRET}" }}',
                    "source.auth.key", "auth =", ("literal secret", "use key_env")),
    "literal api_key": (REST, AUTH, f'auth = {{ type = "api_key", name = "X-Key", api_key = "{SECRET}" }}',
                        "source.auth.api_key", "auth =", ("literal secret", "use key_env")),
    "literal token in the source": (REST, AUTH, f'token = "{SECRET}"', "source.token", "token =",
                                    ("literal secret", "use token_env")),
    "secret header": (REST, 'headers = { Accept = "application/json" }',
                      f'headers = {{ Accept = "application/json", Authorization = "Bearer {SECRET}" }}',
                      "source.headers.Authorization", "headers =", ("literal secret", "source.auth")),
    "secret query parameter": (REST, 'path = "/v1/readings"', f'path = "/v1/readings"\nparams = {{ api_key = "{SECRET}" }}',
                               f"{R0}.params.api_key", "params =", ("literal secret", 'location = "query"')),
    "a secret as the variable's name": (REST, 'token_env = "EXAMPLE_TOKEN"', f'token_env = "{SECRET}"',
                                        "source.auth.token_env", "auth =",
                                        ("not an environment variable's name", "EXAMPLE_TOKEN")),
    "schedule not a cron": (REST, 'description = "Readings"', 'description = "Readings"\nschedule = "every day"',
                            "schedule", "schedule", ("not a cron expression of five fields", '"0 6 * * *"')),
    "schedule field out of range": (REST, 'description = "Readings"', 'description = "Readings"\nschedule = "0 25 * * *"',
                                    "schedule", "schedule", ("hour field", "outside 0-23")),
    "from not schema.table": (REST, 'from = "analytics.pm25_features"', 'from = "pm25_features"', "models[0].from",
                              "from =", ('"pm25_features" is not "schema.table"',)),
    "unknown task": (REST, 'task = "regress"', 'task = "cluster"', "models[0].task", "task =",
                     ('"cluster" is not a task', "allowed: classify, regress")),
    "regress metric": (REST, 'metric = "mae"', 'metric = "accuracy"', "models[0].metric", "metric =",
                       ('"accuracy" is not a regress metric', "allowed: mae, mse, r2")),
    "classify metric": (REST, 'task = "regress"', 'task = "classify"', "models[0].metric", "metric =",
                        ('"mae" is not a classify metric', "allowed: f1_macro, accuracy")),
    "unknown estimator": (REST, '"ridge"', '"xgboost"', "models[0].candidates[0].estimator", "candidates",
                          ('"xgboost" is not an estimator', "allowed: linear, ridge, lasso, random_forest, "
                           "gradient_boosting, hist_gradient_boosting, logistic_regression, knn")),
    "no candidates": (REST, 'candidates = [ { estimator = "ridge" } ]', "candidates = []", "models[0].candidates",
                      "candidates", ("empty", 'estimator = "ridge"')),
    "unknown model key": (REST, 'metric = "mae"', 'metric = "mae"\nthreshold = 0.5', "models[0].threshold",
                          "threshold", ("unknown key", "allowed: name, task, from")),
    "target among the features": (REST, 'features = ["hour", "lag1"]', 'features = ["hour", "pm25"]',
                                  "models[0].features", "features", ('holds the target "pm25"',)),
    "model name": (REST, 'name = "pm25-forecast"', 'name = "PM25 forecast"', "models[0].name", "PM25 forecast",
                   ("lowercase letters, digits, - and _",)),
    "two models of one name": (REST, "", "", "models[1].name", 'name = "pm25-forecast"',
                               ('"pm25-forecast" is also models[0]\'s name',)),
}


def refused_text(case: str) -> str:
    base, old, new, *_ = REFUSED[case]
    if case == "two resources of one name":
        return base + '\n[[source.resources]]\nname = "sales"\nglob = "more_*.csv"\n'
    if case == "two models of one name":
        return base + base[base.index("[[models]]"):]
    assert old in base, (case, old)
    return base.replace(old, new, 1)


def expected_line(text: str, marker: str) -> int:
    """The last line holding the marker (the second of two like names is the one at fault)."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert found, marker
    return found[-1]


def problem_line(message: str, prefix: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip().startswith(prefix)]
    assert lines, f"no line starts {prefix!r} in:\n{message}"
    return lines[0]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_config_names_file_line_key_and_what_is_allowed(case: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = refused_text(case)
    _, _, _, key, marker, says = REFUSED[case]
    with pytest.raises(ConfigError) as raised:
        load_config(write_pipeline(tmp_path, "air", text))
    message = str(raised.value)
    line = problem_line(message, f"pipelines/air/pipeline.toml:{expected_line(text, marker)}: {key}: ")
    for words in says:
        assert words in line, (words, line)
    assert SECRET not in message
    assert raised.value.exit_code == 2


def test_every_problem_is_listed_at_once_in_the_file_s_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = (REST.replace('"rest"', '"rest"\nbase = 1').replace('"page_number"', '"pages"')
            .replace('"ridge"', '"xgboost"').replace("min = 0,", "mn = 0,"))
    with pytest.raises(ConfigError) as raised:
        load_config(write_pipeline(tmp_path, "air", text))
    first, *lines = str(raised.value).splitlines()
    assert first == "4 problem(s) in pipelines/air/pipeline.toml:"
    keys = [line.split(": ")[1] for line in lines]
    assert keys == ["source.base", f"{R0}.paginator.type", f"{R0}.contract.columns.pm25.mn",
                    "models[0].candidates[0].estimator"]
    numbers = [int(line.strip().split(":")[1]) for line in lines]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4


def test_invalid_toml_is_named_with_tomllib_s_line_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^pipelines/air/pipeline\.toml:3:8: not valid TOML: Expected ']'"):
        load_config(write_pipeline(tmp_path, "air", 'description = "x"\n\n[source\n'))


def test_a_folder_without_pipeline_toml_says_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot be read .*holds pipeline\.toml"):
        load_config(tmp_path)


# three broken pipelines in a project made by `lakebox init`: `lakebox check` lists every problem
CLI_CASES = {"air": "unknown paginator", "shop": "missing glob", "keys": "literal token"}


@pytest.fixture(scope="module")
def broken_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("project")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_") or k == "LAKEBOX_CACHE_DIR"}
    env |= {"LAKEBOX_HOME": str(root / "proj" / ".lakebox"), "PWD": str(root)}
    made = run_cli("init", "proj", env=env)
    assert made.returncode == 0, made.stderr
    project = root / "proj"
    toml = project / "lakebox.toml"
    toml.write_text(toml.read_text().replace('pipelines = ["weather"]', f"pipelines = {['weather', *CLI_CASES]!r}"
                                             .replace("'", '"')))
    for name, case in CLI_CASES.items():
        write_pipeline(project, name, refused_text(case))
    return project, env | {"PWD": str(project)}


def test_lakebox_check_lists_every_pipeline_s_problems_and_exits_2(broken_project: tuple[Path, dict[str, str]]) -> None:
    project, env = broken_project
    result = run_cli("check", env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and SECRET not in result.stderr + result.stdout
    for name, case in CLI_CASES.items():
        text = (project / "pipelines" / name / "pipeline.toml").read_text()
        _, _, _, key, marker, says = REFUSED[case]
        line = problem_line(result.stderr, f"pipelines/{name}/pipeline.toml:{expected_line(text, marker)}: {key}: ")
        assert all(words in line for words in says), line
    assert f"{len(CLI_CASES)} problem(s):" in result.stderr


def test_lakebox_run_refuses_a_broken_pipeline_toml_before_anything_runs(
        broken_project: tuple[Path, dict[str, str]]) -> None:
    project, env = broken_project
    result = run_cli("run", "air", env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "pipelines/air/pipeline.toml" in result.stderr and '"pages" is not a paginator' in result.stderr
    assert SECRET not in result.stderr and "Traceback" not in result.stderr
    assert not (project / ".lakebox" / "warehouse.duckdb").exists()


def test_check_names_two_resources_of_two_pipelines_with_one_raw_table(tmp_path: Path) -> None:
    from lakebox.declarative.spec import spec_from_folder
    from lakebox.project_check import raw_table_clashes

    one = FILES.replace('name = "sales"', 'name = "x"')
    other = FILES.replace('name = "sales"', 'name = "pm_x"')
    specs = {name: spec_from_folder(write_pipeline(tmp_path, name, text))
             for name, text in (("air", other), ("air_pm", one), ("shop", FILES))}
    (problem,) = raw_table_clashes(specs)
    assert problem.startswith(f"{tmp_path}/pipelines/air_pm/pipeline.toml resource \"x\": its raw table raw.air_pm_x "
                              f"is also {tmp_path}/pipelines/air/pipeline.toml resource \"pm_x\"'s"), problem
