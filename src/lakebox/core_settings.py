"""Every setting the core reads, declared once: variable, kind, default and meaning.

`Settings.load` checks each of these (and each pipeline's, from its spec) before anything
runs, `lakebox config` shows them, docs/settings.md lists them (a test keeps it true). Code
reads a value through its declaration, `HTTP_TIMEOUT.read(settings.env)`, so the parsing and
the default live here and nowhere else. A `LAKEBOX_` variable the code reads that is not
declared here or by a pipeline is caught by tests/test_settings.py.
"""

from __future__ import annotations

from typing import Any

from lakebox.setting_kinds import Choice, Cron, Day, Declared, Duration, Location, Number, Pairs, Text, Url, Whole

# Where things live; defaults under the home are filled in by Settings.load.
HOME = Declared("LAKEBOX_HOME", Text("a folder"), "./.lakebox",
                "where the default warehouse, lake, landing folder, logs and locks live")
WAREHOUSE = Declared("LAKEBOX_WAREHOUSE", Text("a DuckDB file, or a postgresql://, spark:// or spark+local:// URL"), None,
                     "a DuckDB file (default `$LAKEBOX_HOME/warehouse.duckdb`), `postgresql://user@host:5432/db` "
                     "(password from the environment or `PGPASSWORD`), `spark://host:7077` or `spark+local://[N]`")
LAKE = Declared("LAKEBOX_LAKE", Location(), None,
                "the raw lake (default `$LAKEBOX_HOME/lake`): a folder or `s3://bucket/prefix` "
                "(+ `AWS_ENDPOINT_URL` for MinIO)")
LANDING = Declared("LAKEBOX_LANDING", Location(), None,
                   "where file-fed pipelines find their drops, `<landing>/<pipeline>/` "
                   "(default `$LAKEBOX_HOME/landing`): a folder or `s3://`")
LOG_LEVEL = Declared("LAKEBOX_LOG_LEVEL", Choice(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")), "INFO",
                     "the JSON-lines logs on stderr when it is not a terminal (`$LAKEBOX_HOME/logs/` gets "
                     "every level; `lakebox run` on a terminal shows warnings, see --verbose)")
CACHE_DIR = Declared("LAKEBOX_CACHE_DIR", Text("a folder, or off"), None,
                     "machine-wide cache of dbt's parse, shared by every home (default "
                     "`$XDG_CACHE_HOME/lakebox` or `~/.cache/lakebox`); `off` disables")
CONFIG = Declared("LAKEBOX_CONFIG", Text("a file, or off"), "./lakebox.toml",
                  "the settings file to read: the default may be absent (then none); a file named here must "
                  "exist; `off` reads none", key=None)
PROJECT = Declared("LAKEBOX_PROJECT", Text("a folder"), None,
                   "the lakebox project, a folder with lakebox.toml (`--project DIR` sets it); unset: the "
                   "nearest lakebox.toml in the working directory or above, else none", key=None)
PIPELINES_PATH = Declared("LAKEBOX_PIPELINES_PATH", Text("folders separated by :"), None,
                          "extra folders (`:`-separated) holding one folder per pipeline, found beside the "
                          "bundled ones", key=None)

# Warehouses and the lake
PG_CONNECT_TIMEOUT = Declared("LAKEBOX_PG_CONNECT_TIMEOUT", Whole(1), "10",
                              "seconds to wait for PostgreSQL to accept a connection")
OPS_URL = Declared("LAKEBOX_OPS_URL", Url(("postgresql", "postgres", "sqlite")), None,
                   "where a Spark warehouse keeps its audit (default SQLite at `$LAKEBOX_HOME/ops.sqlite`)")
SPARK_WAREHOUSE_DIR = Declared("LAKEBOX_SPARK_WAREHOUSE_DIR", Text("a folder"), None,
                               "where Spark keeps its tables (default `$LAKEBOX_HOME/spark-warehouse`)")
SPARK_CONF = Declared("LAKEBOX_SPARK_CONF", Pairs(), None, "extra Spark settings, `key=value key=value`")
S3_CONDITIONAL_WRITES = Declared("LAKEBOX_S3_CONDITIONAL_WRITES", Choice(("auto", "on", "off")), "auto",
                                 "write-once on S3 by conditional writes; `auto` probes the store once")
DBT_LOG_LEVEL = Declared("LAKEBOX_DBT_LOG_LEVEL", Choice(("debug", "info", "warn", "error", "none")), "warn",
                         "what dbt writes to `$LAKEBOX_HOME/dbt/logs/dbt.log`")

# The retry policy of HTTP sources (lakebox.ingest.http)
HTTP_MAX_ATTEMPTS = Declared("LAKEBOX_HTTP_MAX_ATTEMPTS", Whole(1), "6", "HTTP sources: attempts per request")
HTTP_MAX_ELAPSED = Declared("LAKEBOX_HTTP_MAX_ELAPSED", Number(above=0), "120",
                            "HTTP sources: seconds one request may take, retries included")
HTTP_BACKOFF = Declared("LAKEBOX_HTTP_BACKOFF", Number(low=0), "0.5",
                        "HTTP sources: first backoff in seconds (doubles each attempt)")
HTTP_MAX_DELAY = Declared("LAKEBOX_HTTP_MAX_DELAY", Number(low=0), "30",
                          "HTTP sources: longest backoff between attempts (a longer `Retry-After` is honoured "
                          "in full, within `LAKEBOX_HTTP_MAX_ELAPSED`)")
HTTP_TIMEOUT = Declared("LAKEBOX_HTTP_TIMEOUT", Number(above=0), "30", "HTTP sources: seconds per attempt")
HTTP_MAX_RATE_LIMIT_WAIT = Declared("LAKEBOX_HTTP_MAX_RATE_LIMIT_WAIT", Number(low=0), "900",
                                    "HTTP sources: longest wait for a rate-limit reset (`X-RateLimit-Reset`); "
                                    "beyond it the fetch fails saying when to retry")
HTTP_MAX_PAGES = Declared("LAKEBOX_HTTP_MAX_PAGES", Whole(1), "100000",
                          "most pages one run of a REST source fetches (all its resources); an API still "
                          "sending a next page past it fails the run")
HTTP_MAX_RECORDS = Declared("LAKEBOX_HTTP_MAX_RECORDS", Whole(1), "100000000",
                            "most records one run of a REST source fetches")

# Orchestration (lakebox serve / worker)
EXECUTOR = Declared("LAKEBOX_EXECUTOR", Choice(("in-process", "celery")), "in-process",
                    "how Dagster runs a job's steps: in its run process, or as Celery tasks for `lakebox worker`s")
CELERY_BROKER = Declared("LAKEBOX_CELERY_BROKER", Url(()), "amqp://guest:guest@127.0.0.1:5672//",
                         "the Celery broker (e.g. RabbitMQ) when `LAKEBOX_EXECUTOR=celery`")
CELERY_BACKEND = Declared("LAKEBOX_CELERY_BACKEND", Url(()), "rpc://", "the Celery result backend")

# Observability
METRICS_PORT = Declared("LAKEBOX_METRICS_PORT", Whole(0, 65535), None,
                        "`lakebox watch` serves Prometheus /metrics on this port (unset: no endpoint)")
METRICS_HOST = Declared("LAKEBOX_METRICS_HOST", Text("a host name or address"), "127.0.0.1", "the address /metrics binds")
METRICS_REFRESH = Declared("LAKEBOX_METRICS_REFRESH", Duration(), "15", "how often /metrics re-reads the ops tables")
PUSHGATEWAY_URL = Declared("LAKEBOX_PUSHGATEWAY_URL", Url(), None, "a Prometheus Pushgateway each run pushes to")
LOKI_URL = Declared("LAKEBOX_LOKI_URL", Url(), None, "a Loki the logs are shipped to, besides the files")
LOKI_BATCH = Declared("LAKEBOX_LOKI_BATCH", Whole(1), "500", "Loki: most lines per push")
LOKI_INTERVAL = Declared("LAKEBOX_LOKI_INTERVAL", Number(above=0), "1.0", "Loki: seconds between pushes")
LOKI_TIMEOUT = Declared("LAKEBOX_LOKI_TIMEOUT", Number(above=0), "3", "Loki: seconds per push")
LOKI_ATTEMPTS = Declared("LAKEBOX_LOKI_ATTEMPTS", Whole(1), "3", "Loki: attempts per push")
LOKI_BUFFER = Declared("LAKEBOX_LOKI_BUFFER", Whole(1), "10000",
                       "Loki: lines kept while it is unreachable (the oldest go first)")
LOKI_FLUSH = Declared("LAKEBOX_LOKI_FLUSH", Number(low=0), "2", "Loki: seconds to push what is left at exit")
ALERT_WEBHOOK_URL = Declared("LAKEBOX_ALERT_WEBHOOK_URL", Url(), None,
                             "a Slack-compatible webhook for alerts (a secret: environment only, never shown)",
                             secret=True)
ALERT_ATTEMPTS = Declared("LAKEBOX_ALERT_ATTEMPTS", Whole(1), "5", "alerts: attempts per message")
ALERT_BACKOFF = Declared("LAKEBOX_ALERT_BACKOFF", Number(low=0), "1.0",
                         "alerts: first backoff in seconds (doubles each attempt)")
ALERT_TIMEOUT = Declared("LAKEBOX_ALERT_TIMEOUT", Number(above=0), "5", "alerts: seconds per attempt")
ALERT_FLUSH = Declared("LAKEBOX_ALERT_FLUSH", Number(low=0), "10", "alerts: seconds to deliver what is queued at exit")
FRESHNESS_SLA = Declared("LAKEBOX_FRESHNESS_SLA", Duration(), "1d",
                         "how stale a pipeline may get before it alerts, unless `LAKEBOX_<PIPELINE>_SLA` says")
LINEAGE = Declared("LAKEBOX_LINEAGE", Choice(("on", "off")), "on",
                   "OpenLineage events of every run and stage, to `$LAKEBOX_HOME/lineage/events.jsonl`")
OPENLINEAGE_URL = Declared("LAKEBOX_OPENLINEAGE_URL", Url(), None,
                           "also send the events to this OpenLineage endpoint (Marquez: `http://host:5000`, "
                           "posted to `/api/v1/lineage`); undelivered ones wait in `$LAKEBOX_HOME/lineage/spool/`")
OPENLINEAGE_API_KEY = Declared("LAKEBOX_OPENLINEAGE_API_KEY", Text("a token"), None,
                               "sent as `Authorization: Bearer` to the OpenLineage endpoint (a secret: "
                               "environment only, never shown)", secret=True)
ANOMALY_K = Declared("LAKEBOX_ANOMALY_K", Number(above=0), "4",
                     "row-count anomalies: how many (scaled) MADs from the median a count may stray")
ANOMALY_RUNS = Declared("LAKEBOX_ANOMALY_RUNS", Whole(2), "28",
                        "row-count anomalies: how many earlier runs of a pipeline the bounds are drawn from")
ANOMALY_FLOOR = Declared("LAKEBOX_ANOMALY_FLOOR", Number(above=1), "2",
                         "row-count anomalies: a count within this factor of the median (×/÷) never flags")
OPENLINEAGE_NAMESPACE = Declared("LAKEBOX_OPENLINEAGE_NAMESPACE", Text("a name"), "lakebox",
                                 "the OpenLineage namespace of lakebox's jobs")

# Machine learning
MLFLOW_ARTIFACTS = Declared("LAKEBOX_MLFLOW_ARTIFACTS", Text("a folder or URL"), None,
                            "where MLflow keeps models (default `$LAKEBOX_HOME/mlartifacts`, or "
                            "`<lake>/mlartifacts` when the lake is on S3): a folder or `s3://`")
GIT_COMMIT = Declared("LAKEBOX_GIT_COMMIT", Text("a commit id"), None,
                      "the commit recorded with each model (images set it; default: asked of git)", key=None)

SERVE_TOKEN = Declared("LAKEBOX_SERVE_TOKEN", Text("a token"), None,
                       "`lakebox ml serve`: the bearer token callers must send; required to bind any address "
                       "but loopback (a secret: environment only, never shown)", secret=True)
SERVE_MAX_BODY = Declared("LAKEBOX_SERVE_MAX_BODY", Whole(1), "10485760",
                          "`lakebox ml serve`: the largest request body in bytes (larger: 400)")
SERVE_POLL = Declared("LAKEBOX_SERVE_POLL", Number(above=0), "1.0",
                      "`lakebox ml serve`: seconds between looks at the registry's aliases (a moved alias is "
                      "served within about this long, once the new version is loaded)")

CORE: tuple[Declared[Any], ...] = tuple(v for v in globals().values() if isinstance(v, Declared))

# The kind of a pipeline's `policy` setting (lakebox.quality.gate): what a bad input does to its run.
GATE_POLICY = Choice(("quarantine", "fail-fast"))

# Read by the core for every pipeline: LAKEBOX_<PIPELINE>_<KEY>, or `key` in its lakebox.toml table.
SCHEDULE = Declared("LAKEBOX_<PIPELINE>_SCHEDULE", Cron(), "0 * * * *",
                    "`lakebox serve`: when a polled pipeline runs (cron, UTC), or `off`")
PARTITIONS_START = Declared("LAKEBOX_<PIPELINE>_PARTITIONS_START", Day(), "2024-01-01",
                            "`lakebox serve`: a file-fed pipeline's first daily partition")
SENSOR_INTERVAL = Declared("LAKEBOX_<PIPELINE>_SENSOR_INTERVAL", Whole(1), "30",
                           "`lakebox serve`: seconds between looks for a file-fed pipeline's new drops")
SLA = Declared("LAKEBOX_<PIPELINE>_SLA", Duration(), None,
               "how stale this pipeline may get before it alerts (default `LAKEBOX_FRESHNESS_SLA`)")
# Retraining triggers of the pipeline's models (lakebox.ml.triggers), each model judged on its own
RETRAIN_SCHEDULE = Declared("LAKEBOX_<PIPELINE>_RETRAIN_SCHEDULE", Cron(), "off",
                            "retrain each of the pipeline's models on this cron (UTC), or `off`")
RETRAIN_ON_DRIFT = Declared("LAKEBOX_<PIPELINE>_RETRAIN_ON_DRIFT", Choice(("on", "off")), "on",
                            "retrain a model once when ml.drift_report flags drift against its champion")
QUALITY_THRESHOLD = Declared("LAKEBOX_<PIPELINE>_QUALITY_THRESHOLD", Number(), None,
                             "a model's live quality (its metric in ml.model_performance) worse than this "
                             "alerts and retrains once per champion; unset: live quality triggers nothing")
QUALITY_MIN_ROWS = Declared("LAKEBOX_<PIPELINE>_QUALITY_MIN_ROWS", Whole(1), "30",
                            "labelled predictions a day needs before its live quality is judged")
EVERY_PIPELINE: dict[str, Declared[Any]] = {"schedule": SCHEDULE, "partitions_start": PARTITIONS_START,
                                             "sensor_interval": SENSOR_INTERVAL, "sla": SLA,
                                             "retrain_schedule": RETRAIN_SCHEDULE,
                                             "retrain_on_drift": RETRAIN_ON_DRIFT,
                                             "quality_threshold": QUALITY_THRESHOLD,
                                             "quality_min_rows": QUALITY_MIN_ROWS}


def for_pipeline(key: str, pipeline: str) -> Declared[Any]:
    """One of EVERY_PIPELINE's settings, named for `pipeline`."""
    template = EVERY_PIPELINE[key]
    return template.named(template.name.replace("<PIPELINE>", pipeline.upper()), f"[lakebox.{pipeline}] {key}")
