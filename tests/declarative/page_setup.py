"""Stand-ins for the declarative page's tests: two declarative pipeline folders (pipeline.toml
and SQL models, read by lakebox.declarative.config.load_config), a DuckDB warehouse written
with SQL (marts, ops rows, predictions) and a real MLflow registry with a champion.

Each is a declarative pipeline as a user writes one (pipeline.toml and models/, found by
discovery, its spec built by lakebox.declarative.spec); air_quality declares a model.

The figures follow rules simple enough to check by hand:
- air_quality: analytics.pm25_daily has, for Lisbon and Porto on each of 1-30 Jan 2026,
  pm25 = day (Lisbon) or 2 * day (Porto) and 24 readings; analytics.city_summary has one row
  a city and no date; analytics.pm25_weekly is declared but not built.
- river_levels: analytics.level_hourly, level_cm = 100 + hour over 48 hours of 2026-01-01.
- model pm25-forecast: champion v2 (v1 was champion before), mae 1.25 against a baseline
  of 2.5; 40 predictions, the newest scored 2026-01-31 06:00.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson

AIR, RIVER, EMPTY = "air_quality", "river_levels", "new_feed"  # new_feed: declared, never run
MODEL = "pm25-forecast"
DAYS = 30
CITIES = {"Lisbon": 1, "Porto": 2}  # pm25 = factor * day of January
CHAMPION_MAE, BASELINE_MAE = 1.25, 2.5

AIR_TOML = '''
description = "Daily PM2.5 readings per city"

[source]
type = "rest"
base_url = "http://127.0.0.1:9/api"

[[source.resources]]
name = "readings"
path = "/v1/readings"
primary_key = ["measured_at", "city"]

[[source.resources]]
name = "stations"
path = "/v1/stations"

[[models]]
name = "pm25-forecast"
task = "regress"
from = "analytics.pm25_daily"
target = "pm25"
features = ["readings"]
time = "day"
key = ["day", "city"]
metric = "mae"
baseline = "readings"
candidates = [{ estimator = "ridge" }]
'''

RIVER_TOML = '''
description = "Hourly river levels"

[source]
type = "files"

[[source.resources]]
name = "levels"
glob = "*.csv"
'''

FAILED_RULES = [{"rule": "min", "column": "pm25", "failing_rows": 2, "detail": "pm25 < 0", "sample": []}]


def write_pipelines(root: Path) -> Path:
    """Both pipeline folders under `root/pipelines`; returns that folder."""
    folder = root / "pipelines"
    for name, toml, marts in ((AIR, AIR_TOML, ("pm25_daily", "city_summary", "pm25_weekly")),
                              (RIVER, RIVER_TOML, ("level_hourly",)), (EMPTY, RIVER_TOML, ("feed_daily",))):
        pipeline = folder / name
        (pipeline / "models" / "marts").mkdir(parents=True)
        (pipeline / "models" / "staging").mkdir()
        (pipeline / "pipeline.toml").write_text(toml)
        (pipeline / "models" / "staging" / f"stg_{name}.sql").write_text("select 1 as one\n")
        for mart in marts:
            (pipeline / "models" / "marts" / f"{mart}.sql").write_text(f"select * from {{{{ ref('stg_{name}') }}}}\n")
    return folder


WAREHOUSE_SQL = [
    "create schema if not exists analytics",
    "create schema if not exists ml",
    "create table analytics.pm25_daily as select cast(date '2026-01-01' + cast(d - 1 as integer) as date) as day, "
    "city, cast(f * d as decimal(10, 2)) as pm25, 24 as readings "
    "from range(1, 31) as t(d), (values ('Lisbon', 1), ('Porto', 2)) as c(city, f)",
    "create table analytics.city_summary as select city, cast(avg(pm25) as double) as mean_pm25, "
    "'a long note on how this city measures its air, kept whole in the table' as measurement_note "
    "from analytics.pm25_daily group by city",
    "create table analytics.level_hourly as select timestamp '2026-01-01 00:00:00' + to_hours(cast(h as bigint)) "
    "as measured_at, 100.0 + h as level_cm from range(0, 48) as t(h)",
    "create table ml.pm25_forecast_predictions as select cast(date '2026-01-01' + cast(i / 2 as integer) as date) "
    "as day, case when i % 2 = 0 then 'Lisbon' else 'Porto' end as city, 1.5 * i as predicted, "
    "'pm25-forecast' as model_name, '2' as model_version, "
    "timestamp '2026-01-11 06:00:00' + to_hours(cast(i * 12 as bigint)) as scored_at from range(0, 40) as t(i)",
]


def record_ops(settings: object) -> None:
    """Runs of both pipelines and another, quality results and a quarantine item of air_quality."""
    from lakebox.quality.gate import CheckResult
    from lakebox.warehouse import open_warehouse, ops

    with open_warehouse(settings) as wh:  # type: ignore[arg-type]
        started = ops.utcnow() - dt.timedelta(minutes=5)
        for run_id, pipeline, status, error in (
            ("run-air-1", AIR, "success", None),
            ("run-air-2", AIR, "partial", "air_quality: 1 input item(s) failed the quality gate and were quarantined"),
            ("run-river-1", RIVER, "success", None),
            ("run-orders-1", "orders", "failed", "not this page's"),
        ):
            ops.start_run(wh, run_id, pipeline)
            ops.end_run(wh, run_id, status, started, 60, 60, error)
        ops.record_dq_results(wh, "run-air-2", "batch-air-bad", f"{AIR}_readings", [
            CheckResult("min", "pm25", False, 2, [{"pm25": -1}]),
            CheckResult("required", "city", True, 0, []),
        ])
        ops.record_dq_results(wh, "run-air-1", "batch-air-ok", f"{AIR}_stations", [
            CheckResult("unique", "station_id", True, 0, []),
        ])
        ops.record_dq_results(wh, "run-orders-1", "batch-orders", "orders", [
            CheckResult("not_null", "order_id", False, 5, []),
        ])
        rules = orjson.dumps(FAILED_RULES).decode()
        ops.quarantine.open_item(wh, source=f"{AIR}_readings", pipeline=AIR, batch_id="batch-air-bad",
                                 item="GET /v1/readings page 3", lake_path="raw/air_quality_readings/x.json",
                                 quarantine_path="quarantine/air_quality_readings/x.json", rules=rules,
                                 run_id="run-air-2")
        ops.quarantine.open_item(wh, source="retail_sales", pipeline="retail", batch_id="batch-retail",
                                 item="sales.csv", lake_path="raw/retail_sales/x.csv",
                                 quarantine_path="quarantine/retail_sales/x.csv", rules=rules, run_id="r")
        for sql in WAREHOUSE_SQL:
            wh.execute(sql)


def register_champion(settings: object, tmp: Path) -> None:
    """pm25-forecast in a real MLflow registry: v1 then v2 champion, each from a run with metrics."""
    from lakebox.ml import tracking

    client = tracking.connect(settings)  # type: ignore[arg-type]
    experiment = tracking.experiment_id(client, settings, MODEL)  # type: ignore[arg-type]
    client.create_registered_model(MODEL)
    for version, mae in (("1", 1.8), ("2", CHAMPION_MAE)):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "mae", mae)
        client.log_metric(run.info.run_id, "baseline_mae", BASELINE_MAE)
        client.log_metric(run.info.run_id, "r2", 0.75)
        client.set_terminated(run.info.run_id)
        artifact = tmp / f"model-v{version}"
        artifact.mkdir()
        made = client.create_model_version(MODEL, source=artifact.as_uri(), run_id=run.info.run_id)
        assert str(made.version) == version
        client.set_registered_model_alias(MODEL, "champion", version)
