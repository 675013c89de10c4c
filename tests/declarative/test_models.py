"""Declared models ([[models]] in pipeline.toml) through the real lifecycle: a real MLflow
store (SQLite in the module's home), real marts in the warehouse with real signal made
here with numpy, the ML stages as a declarative pipeline runs them.

- sensor-forecast (regress): target = 3*x1 - 2*x2 + a site effect + noise (x2 a decimal,
  site a text); the baseline column lag1 (the previous reading) knows nothing of x1, x2:
  the model must beat it.
- flower-kind (classify): three kinds separable by two measurements (a few missing).
- noise-forecast (regress): a random walk whose features are pure noise; its lag1 is the
  better forecast, so the model must not be promoted.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lakebox.declarative.config import ESTIMATORS, CandidateConfig, PipelineConfig, load_config
from lakebox.declarative.models import candidates, model_specs, stages
from lakebox.errors import ConfigError
from lakebox.lake import Lake
from lakebox.ml import tables, train
from lakebox.ml.stages import training_due
from lakebox.ml.tracking import connect
from lakebox.settings import Settings
from lakebox.stage import RunContext
from lakebox.warehouse import Warehouse, open_warehouse

PIPELINE_TOML = """
description = "sensors and flowers"

[source]
type = "files"

[[source.resources]]
name = "readings"
glob = "*.csv"

[[models]]
name = "sensor-forecast"
task = "regress"
from = "analytics.sensor_features"
target = "reading"
features = ["x1", "x2", "site"]
time = "measured_at"
key = ["measured_at"]
metric = "mae"
margin = 0.05
baseline = "lag1"
candidates = [ { estimator = "ridge" }, { estimator = "random_forest", params = { n_estimators = 15, max_depth = 6 } } ]

[[models]]
name = "flower-kind"
task = "classify"
from = "analytics.flower_features"
target = "kind"
features = ["petal", "sepal"]
time = "seen_on"
key = ["flower_id"]
metric = "f1_macro"
candidates = [ { estimator = "logistic_regression" }, { estimator = "random_forest", params = { n_estimators = 15 } } ]

[[models]]
name = "noise-forecast"
task = "regress"
from = "analytics.noise_features"
target = "level"
features = ["n1", "n2"]
time = "measured_at"
key = ["measured_at"]
metric = "mae"
baseline = "lag1"
candidates = [ { estimator = "ridge" } ]
"""

SENSOR_ROWS, SENSOR_UNLABELLED = 800, 20
FLOWER_ROWS, FLOWER_UNLABELLED = 600, 30
NOISE_ROWS = 600
KINDS = ("setosa", "versicolor", "virginica")


def _marts(warehouse: Warehouse) -> None:
    rng = np.random.default_rng(7)
    start = dt.datetime(2026, 1, 1)

    x1, x2 = rng.normal(size=SENSOR_ROWS), rng.normal(size=SENSOR_ROWS)
    site = rng.choice(["north", "south"], size=SENSOR_ROWS)
    reading = 3 * x1 - 2 * x2 + np.where(site == "north", 1.0, -1.0) + rng.normal(scale=0.3, size=SENSOR_ROWS)
    lag1 = np.concatenate([[np.nan], reading[:-1]])
    labelled = np.arange(SENSOR_ROWS) < SENSOR_ROWS - SENSOR_UNLABELLED  # the newest have no reading yet
    _table(warehouse, "analytics.sensor_features", {
        "measured_at": pa.array([start + dt.timedelta(hours=i) for i in range(SENSOR_ROWS)], pa.timestamp("us")),
        "site": site.tolist(), "x1": x1, "x2": x2, "lag1": pa.array(lag1, from_pandas=True),
        "reading": pa.array(np.where(labelled, reading, np.nan), from_pandas=True),
    })
    # x2 as an exact numeric, as PostgreSQL's numeric arrives: a number to the model, not a text
    warehouse.execute("create or replace table analytics.sensor_features as select * replace "
                      "(cast(x2 as decimal(12, 6)) as x2) from analytics.sensor_features")

    kind = rng.integers(0, 3, size=FLOWER_ROWS)
    petal = kind * 3.0 + rng.normal(scale=0.6, size=FLOWER_ROWS)
    sepal = -kind * 2.0 + rng.normal(scale=0.6, size=FLOWER_ROWS)
    sepal[rng.choice(FLOWER_ROWS, size=20, replace=False)] = np.nan  # imputed, not fatal
    names = np.array(KINDS, dtype=object)[kind]
    names[FLOWER_ROWS - FLOWER_UNLABELLED:] = None
    _table(warehouse, "analytics.flower_features", {
        "flower_id": pa.array(np.arange(FLOWER_ROWS) + 1000, pa.int64()),
        "seen_on": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(FLOWER_ROWS)], pa.date32()),
        "petal": petal, "sepal": pa.array(sepal, from_pandas=True), "kind": pa.array(names, pa.string()),
    })

    level = np.cumsum(rng.normal(size=NOISE_ROWS)) + 100  # a random walk: the last value is the forecast
    _table(warehouse, "analytics.noise_features", {
        "measured_at": pa.array([start + dt.timedelta(hours=i) for i in range(NOISE_ROWS)], pa.timestamp("us")),
        "n1": rng.normal(size=NOISE_ROWS), "n2": rng.normal(size=NOISE_ROWS),
        "lag1": pa.array(np.concatenate([[np.nan], level[:-1]]), from_pandas=True), "level": level,
    })


def _table(warehouse: Warehouse, name: str, columns: dict[str, object]) -> None:
    rows = pa.table(columns)
    tables.ensure_like(warehouse, name, rows.schema)
    tables.append(warehouse, name, rows)


@dataclass
class Home:
    settings: Settings
    warehouse: Warehouse
    config: PipelineConfig
    ctx: RunContext


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("declared_models")
    folder = root / "sensors"
    folder.mkdir()
    (folder / "pipeline.toml").write_text(PIPELINE_TOML)
    with pytest.MonkeyPatch.context() as env:
        for name in [k for k in os.environ if k.startswith("LAKEBOX_") and k != "LAKEBOX_CACHE_DIR"]:
            env.delenv(name)
        for name in ("MLFLOW_TRACKING_URI", "LAKEBOX_MLFLOW_ARTIFACTS"):
            env.delenv(name, raising=False)
        env.setenv("LAKEBOX_HOME", str(root / "home"))
        env.setenv("LAKEBOX_CONFIG", "off")
        env.chdir(root)
        settings = Settings.load()
        with open_warehouse(settings) as warehouse:
            _marts(warehouse)
            config = load_config(folder)
            ctx = RunContext(settings=settings, lake=Lake.from_settings(settings), warehouse=warehouse,
                             run_id="run-declared-models", pipeline=config.name)
            yield Home(settings, warehouse, config, ctx)


@pytest.fixture(scope="module")
def ran(home: Home) -> Home:
    """The pipeline's ML stages, as the spec builder appends them after transform, run once."""
    built = stages(home.config)
    assert [s.name for s in built] == ["predict", "train", "drift"]
    for stage in built:
        assert callable(stage.fn)
        stage.fn(home.ctx)
    return home


def _decisions(warehouse: Warehouse, model: str) -> list[tuple[str, str, str]]:
    return [(r[0], r[1], r[2]) for r in warehouse.query(
        "select version, decision, reason from ml.model_decisions where model_name = ? order by decided_at", [model])]


def _columns(warehouse: Warehouse, table: str) -> list[str]:
    return list(warehouse.query_arrow(f"select * from {table} limit 0").schema.names)


def _champion_run(home: Home, model: str) -> dict[str, float]:
    client = connect(home.settings)
    version = client.get_model_version_by_alias(model, "champion")
    return dict(client.get_run(version.run_id).data.metrics)


def test_declared_regressor_beats_its_baseline_column_and_scores(ran: Home) -> None:
    wh = ran.warehouse
    [(version, decision, reason)] = _decisions(wh, "sensor-forecast")
    assert (version, decision) == ("1", "champion")
    assert "beats the last value (lag1) baseline" in reason
    metrics = _champion_run(ran, "sensor-forecast")
    assert metrics["mae"] < 0.5 < 2.0 < metrics["baseline_mae"]  # noise 0.3 vs a reading that knows no x1, x2
    assert metrics["r2"] > 0.95

    assert _columns(wh, "ml.sensor_forecast_predictions") == [
        "measured_at", "predicted", "model_name", "model_version", "scored_at"]
    scored = wh.query_arrow(
        "select f.x1, cast(f.x2 as double precision) as x2, f.site, p.predicted, p.model_name, p.model_version "
        "from ml.sensor_forecast_predictions p join analytics.sensor_features f using (measured_at) where f.reading is null")
    assert scored.num_rows == SENSOR_UNLABELLED  # the rows awaiting a reading are forecast too
    assert set(scored["model_name"].to_pylist()) == {"sensor-forecast"}
    assert set(scored["model_version"].to_pylist()) == {"1"}
    x1, x2 = scored["x1"].to_numpy(), scored["x2"].to_numpy()
    truth = 3 * x1 - 2 * x2 + np.where(np.array(scored["site"].to_pylist()) == "north", 1.0, -1.0)
    assert np.abs(scored["predicted"].to_numpy() - truth).mean() < 0.5
    assert wh.query("select count(*) from ml.sensor_forecast_predictions")[0][0] == SENSOR_ROWS


def test_declared_classifier_beats_the_majority_class_and_scores_with_probability(ran: Home) -> None:
    wh = ran.warehouse
    [(version, decision, reason)] = _decisions(wh, "flower-kind")
    assert (version, decision) == ("1", "champion")
    assert "beats the majority class baseline" in reason
    metrics = _champion_run(ran, "flower-kind")
    assert metrics["baseline_f1_macro"] < 0.3 and metrics["f1_macro"] > 0.9

    assert _columns(wh, "ml.flower_kind_predictions") == [
        "flower_id", "predicted", "probability", "model_name", "model_version", "scored_at"]
    rows = wh.query_arrow("select f.kind, p.predicted, p.probability from ml.flower_kind_predictions p "
                          "join analytics.flower_features f using (flower_id)")
    assert rows.num_rows == FLOWER_ROWS
    assert set(rows["predicted"].to_pylist()) == set(KINDS)
    probability = rows["probability"].to_numpy()
    assert ((probability > 1 / 3) & (probability <= 1)).all()  # the predicted kind's: the likeliest of three
    known = [(k, p) for k, p in zip(rows["kind"].to_pylist(), rows["predicted"].to_pylist(), strict=True) if k]
    assert sum(k == p for k, p in known) / len(known) > 0.9


def test_a_model_whose_features_are_noise_is_not_promoted(ran: Home) -> None:
    wh = ran.warehouse
    [(version, decision, reason)] = _decisions(wh, "noise-forecast")
    assert (version, decision) == ("1", "rejected")
    assert "vs the last value (lag1) baseline" in reason and "not promoted" in reason
    client = connect(ran.settings)
    assert client.get_registered_model("noise-forecast").aliases == {}  # registered, but neither alias
    tags = client.get_model_version("noise-forecast", "1").tags
    assert tags["lakebox.decision"] == "rejected"
    assert not wh.table_exists("ml", "noise_forecast_predictions")  # no champion: nothing scored
    assert training_due(ran.settings, wh, model_specs(ran.config)[2]) == (True, "no champion yet")


def test_a_second_run_scores_only_new_rows_and_does_not_retrain(ran: Home) -> None:
    """Stages run again on the same marts: nothing new to score, training not due."""
    before = _decisions(ran.warehouse, "sensor-forecast")
    predict, train_stage, _ = stages(ran.config)
    assert callable(predict.fn) and callable(train_stage.fn)
    assert predict.fn(ran.ctx).rows_out == 0
    trained = train_stage.fn(ran.ctx)
    assert _decisions(ran.warehouse, "sensor-forecast") == before
    # the noise model has no champion, so it trains again (and is rejected again)
    assert [d for _, d, _ in _decisions(ran.warehouse, "noise-forecast")] == ["rejected", "rejected"]
    assert trained.rows_in == NOISE_ROWS and trained.rows_out == 0


def test_a_feature_missing_from_the_mart_is_refused_naming_its_columns(home: Home) -> None:
    sensor = home.config.models[0]
    config = replace(home.config, models=(replace(sensor, name="sensor-typo", features=("x1", "x3")),))
    [spec] = model_specs(config)
    with pytest.raises(ConfigError) as caught:
        train(home.settings, home.warehouse, spec)
    message = str(caught.value)
    assert "model sensor-typo" in message and "feature 'x3' missing from analytics.sensor_features" in message
    assert "measured_at, site, x1, x2, lag1, reading" in message
    assert caught.value.exit_code == 2

    no_target = replace(home.config, models=(replace(sensor, name="sensor-typo", target="readings"),))
    with pytest.raises(ConfigError, match=r"target 'readings' missing from analytics.sensor_features"):
        stages(no_target)[1].fn(home.ctx)  # type: ignore[operator]  # the train stage refuses too


def test_an_unknown_estimator_param_is_refused_naming_the_estimators_params(home: Home) -> None:
    sensor = home.config.models[0]
    typo = replace(sensor, candidates=(CandidateConfig("random_forest", {"n_estimator": 10}),))
    with pytest.raises(ConfigError) as caught:
        candidates("pipeline.toml: model 'sensor-forecast'", typo)
    message = str(caught.value)
    assert "candidates[0] (random_forest)" in message and "RandomForestRegressor has no parameter(s) 'n_estimator'" in message
    assert "n_estimators" in message and "max_depth" in message  # its parameters, to pick from

    bad_value = replace(sensor, candidates=(CandidateConfig("ridge", {"alpha": "lots"}),))
    with pytest.raises(ConfigError, match=r"candidates\[0\] \(ridge\).*alpha"):
        candidates("pipeline.toml: model 'sensor-forecast'", bad_value)


@pytest.mark.parametrize(("task", "estimator", "metric", "says"), [
    ("classify", "lasso", "f1_macro", "estimator 'lasso' is for regress models only; for task = 'classify' use one of: "
                                      "linear, ridge, random_forest"),
    ("regress", "logistic_regression", "mae", "estimator 'logistic_regression' is for classify models only"),
    ("regress", "svm", "mae", "estimator 'svm' is not one of: linear, ridge, lasso"),
    ("regress", "ridge", "f1_macro", "metric 'f1_macro' cannot rank a regress model; use one of: mae, mse, r2"),
    ("classify", "ridge", "mae", "metric 'mae' cannot rank a classify model; use one of: f1_macro, accuracy"),
])
def test_what_cannot_be_right_is_refused_before_training(tmp_path: Path, task: str, estimator: str, metric: str,
                                                         says: str) -> None:
    (tmp_path / "pipeline.toml").write_text(PIPELINE_TOML)
    config = load_config(tmp_path)
    model = replace(config.models[1], task=task, metric=metric,  # type: ignore[arg-type]
                    candidates=(CandidateConfig(estimator),))
    with pytest.raises(ConfigError) as caught:
        model_specs(replace(config, models=(model,)))
    assert str(caught.value).startswith(f"{tmp_path / 'pipeline.toml'}: model 'flower-kind': ")
    assert says in str(caught.value)


def test_every_allowed_estimator_builds_for_each_task_it_has(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text(PIPELINE_TOML)
    config = load_config(tmp_path)
    regress, classify = config.models[0], config.models[1]
    built = {}
    for model in (regress, classify):
        for estimator in ESTIMATORS:
            one = replace(config, models=(replace(model, candidates=(CandidateConfig(estimator),)),))
            try:
                [spec] = model_specs(one)
            except ConfigError:
                continue  # the other task's estimator
            built[(model.task, estimator)] = type(spec.candidates()[estimator][-1]).__name__
    assert built[("regress", "linear")] == "LinearRegression"
    assert built[("classify", "linear")] == "LogisticRegression"
    assert built[("classify", "random_forest")] == "RandomForestClassifier"
    assert built[("regress", "hist_gradient_boosting")] == "HistGradientBoostingRegressor"
    assert len(built) == 2 * len(ESTIMATORS) - 2  # lasso regresses only, logistic_regression classifies only


def test_the_specs_map_the_toml_without_importing_scikit_learn(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text(PIPELINE_TOML)
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from lakebox.declarative.config import load_config\n"
        "from lakebox.declarative.models import model_specs, stages\n"
        f"config = load_config(Path({str(tmp_path)!r}))\n"
        "sensor, flower, noise = model_specs(config)\n"
        "assert [s.name for s in stages(config)] == ['predict', 'train', 'drift']\n"
        "assert (sensor.task, flower.task) == ('regression', 'classification')\n"
        "assert sensor.source_sql == 'select measured_at, x1, x2, site, reading, lag1 from analytics.sensor_features'\n"
        "assert flower.source_sql == 'select flower_id, seen_on, petal, sepal, kind from analytics.flower_features'\n"
        "assert (sensor.label_column, sensor.baseline_column, flower.baseline_column) == ('reading', 'lag1', None)\n"
        "assert sensor.predictions_table == 'ml.sensor_forecast_predictions' and sensor.margin == 0.05\n"
        "assert sensor.pipeline == config.name and sensor.beat_baseline and flower.beat_baseline\n"
        "assert sensor.required_tables == ('analytics.sensor_features',)\n"
        "assert 'sklearn' not in sys.modules, 'scikit-learn imported before training'\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": src})
    assert done.returncode == 0, done.stderr[-2000:]
