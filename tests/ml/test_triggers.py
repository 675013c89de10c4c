"""Live quality and retraining triggers (issue 21.5): ml.model_performance on a hand-checked
case; a drop in live quality alerts once and retrains once; drift flagged retrains once; a
schedule's tick retrains once; `lakebox watch` retrains on a trigger and not again. Real
DuckDB, a real MLflow SQLite store in the test's home, a real webhook on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import time

import orjson
import pytest

from lakebox.ml import MLModelSpec, performance, predict, train
from lakebox.ml.tracking import connect
from lakebox.ml.triggers import check, retrain
from lakebox.observability import flush_alerts
from lakebox.runner import Pipeline, Stage
from lakebox.settings import Settings
from lakebox.watch import watch
from tests.conftest import serve_on_loopback
from tests.ml.conftest import WHO_BAD, WHO_GOOD

DAY1, DAY2 = dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 2, 9)


def _toy(task: str, metric: str) -> MLModelSpec:
    return MLModelSpec(name=f"toy-{task}", pipeline="toy", task=task, metric=metric,  # type: ignore[arg-type]
                       source_sql="select id, ts, x, label from toy.src", key_columns=("id",), time_column="ts",
                       label_column="label", features=("x",), candidates=dict,
                       predictions_table=f"ml.toy_{task}_predictions")


def _predictions(wh, spec: MLModelSpec, rows: list[tuple[int, object, str, str, dt.datetime]], kind: str) -> None:
    wh.execute(f"create table {spec.predictions_table} (id bigint, predicted {kind}, model_name varchar, "
               "model_version varchar, scored_at timestamp)")
    for row in rows:
        wh.execute(f"insert into {spec.predictions_table} values (?, ?, ?, ?, ?)", list(row))


def test_model_performance_scores_past_predictions_against_the_labels_known_now(warehouse) -> None:
    wh = warehouse
    wh.execute("create schema toy")
    wh.execute("create table toy.src as select * from (values (1, 1, 0.0, 11.0), (2, 2, 0.0, 18.0), "
               "(3, 3, 0.0, 30.0), (4, 4, 0.0, 9.0), (5, 5, 0.0, null), (6, 6, 0.0, 2.0), (7, 7, 0.0, 0.0), "
               "(8, 8, 0.0, 100.0)) t(id, ts, x, label)")
    reg = _toy("regression", "mae")
    _predictions(wh, reg, [
        (1, 10.0, reg.name, "1", DAY1), (2, 20.0, reg.name, "1", DAY1), (3, 30.0, reg.name, "1", DAY1),
        (4, 5.0, reg.name, "1", DAY2), (5, 7.0, reg.name, "1", DAY2),  # no label yet: not judged
        (6, 1.0, reg.name, "2", DAY2), (7, 3.0, reg.name, "2", DAY2),
        (8, 0.0, "another-model", "1", DAY2),  # another model's row
    ], "double")
    performance.refresh(wh, reg)
    performance.refresh(wh, reg)  # rebuilt, not appended
    got = wh.query("select model_version, day, metric, value, labelled_rows from ml.model_performance "
                   "where model_name = ? order by model_version, day", [reg.name])
    # v1 day 1: |10-11|, |20-18|, |30-30| -> 3/3; day 2: |5-9| -> 4; v2 day 2: |1-2|, |3-0| -> 4/2
    assert got == [("1", DAY1.date(), "mae", 1.0, 3), ("1", DAY2.date(), "mae", 4.0, 1),
                   ("2", DAY2.date(), "mae", 2.0, 2)]

    wh.execute("create table toy.cls as select id, ts, x, case when id <= 2 then 'a' else 'b' end as label "
               "from toy.src where id <= 4")
    cls = MLModelSpec(**{**_toy("classification", "f1_macro").__dict__,
                         "source_sql": "select id, ts, x, label from toy.cls"})
    _predictions(wh, cls, [(1, "a", cls.name, "1", DAY1), (2, "a", cls.name, "1", DAY1),
                           (3, "b", cls.name, "1", DAY1), (4, "a", cls.name, "1", DAY1)], "varchar")
    performance.refresh(wh, cls)
    # class a: precision 2/3, recall 1 -> F1 0.8; class b: precision 1, recall 1/2 -> F1 2/3; macro 11/15
    (value, rows), = wh.query("select value, labelled_rows from ml.model_performance where model_name = ?",
                              [cls.name])
    assert (round(value, 6), rows) == (round(11 / 15, 6), 4)
    assert wh.query("select count(*) from ml.model_performance")[0][0] == 4  # the other model's rows kept


class Webhook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        Webhook.received.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _land_surprising_labels(wh) -> None:
    """The year after each country's latest observation lands, 10 years above the trend."""
    wh.execute("update ml.life_expectancy_features set next_value = life_expectancy + 10 where year = 2019")


def _versions(settings) -> int:
    return len(connect(settings).search_model_versions(f"name = '{WHO_GOOD.name}'"))


def _trained_and_scored(settings, wh) -> None:
    assert train(settings, wh, WHO_GOOD).decision.decision == "champion"
    assert predict(settings, wh, WHO_GOOD).rows_scored == 1200  # every row, the 60 awaiting a label too


def test_a_drop_in_live_quality_alerts_once_and_retrains_once(settings, who_warehouse, monkeypatch) -> None:
    wh = who_warehouse
    _trained_and_scored(settings, wh)
    Webhook.received = []
    with serve_on_loopback(Webhook) as url:
        monkeypatch.setenv("LAKEBOX_ALERT_WEBHOOK_URL", url)
        monkeypatch.setenv("LAKEBOX_WHO_GHO_QUALITY_THRESHOLD", "0.5")  # MAE in years
        live = Settings.load()
        assert check(live, wh, WHO_BAD) is None  # in service as well as on the holdout
        (before,), = wh.query("select value from ml.model_performance where model_version = '1'")
        assert before < 0.5

        _land_surprising_labels(wh)
        found = check(live, wh, WHO_BAD)
        assert found is not None and (found.kind, found.evidence, found.champion) == ("quality", "v1", "1")
        assert found.reason.startswith("live mae of champion v1 on ") and "above the threshold 0.5" in found.reason
        result = retrain(live, wh, WHO_BAD, found)  # the mean of every label: far worse
        assert check(live, wh, WHO_BAD) is None  # nothing changed: not again
        assert flush_alerts(10)
        deadline = time.monotonic() + 10
        while not Webhook.received and time.monotonic() < deadline:
            time.sleep(0.05)

    (after,), = wh.query("select value from ml.model_performance where model_version = '1'")
    assert after > 0.5
    assert [(a["kind"], a["model"], a["champion"]) for a in Webhook.received] == \
        [("live_quality", "life-expectancy", "1")]
    assert result.decision.decision == "challenger"  # the champion rule still decides: worse is not promoted
    assert _versions(settings) == 2
    assert wh.query("select kind, evidence, champion_version, version, decision from ml.model_triggers") == \
        [("quality", "v1", "1", "2", "challenger")]
    by, reason = wh.query("select decided_by, reason from ml.model_decisions where version = '2'")[0]
    assert by == "trigger:quality" and reason.startswith("retrained by trigger:quality (live mae of champion v1")
    tags = connect(settings).get_run(result.decision.run_id).data.tags
    assert tags["lakebox.trigger"] == "quality" and tags["lakebox.trigger_reason"] == found.reason

    _flag_drift(wh, dt.datetime.now(dt.UTC).replace(tzinfo=None))  # another trigger still fires
    assert check(live, wh, WHO_BAD).kind == "drift"


def _flag_drift(wh, at: dt.datetime) -> None:
    wh.execute("create table if not exists ml.drift_report (model_name varchar, feature varchar, method varchar, "
               "statistic double, p_value double, threshold double, drifted boolean, window_start timestamp, "
               "window_end timestamp, computed_at timestamp)")
    wh.execute("insert into ml.drift_report values (?, 'region', 'chi2', 40, 0.0001, 0.01, true, null, null, ?), "
               "(?, 'trend_slope', 'ks', 0.1, 0.5, 0.01, false, null, null, ?)", [WHO_GOOD.name, at, WHO_GOOD.name, at])


def test_drift_flagged_retrains_once(settings, who_warehouse, monkeypatch) -> None:
    wh = who_warehouse
    _flag_drift(wh, dt.datetime(2020, 1, 1))  # before the champion: not against it
    _trained_and_scored(settings, wh)
    assert check(settings, wh, WHO_BAD) is None
    _flag_drift(wh, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    monkeypatch.setenv("LAKEBOX_WHO_GHO_RETRAIN_ON_DRIFT", "off")
    assert check(Settings.load(), wh, WHO_BAD) is None
    monkeypatch.delenv("LAKEBOX_WHO_GHO_RETRAIN_ON_DRIFT")

    found = check(settings, wh, WHO_BAD)
    assert found is not None and (found.kind, found.evidence) == ("drift", "v1")
    assert found.reason == "ml.drift_report flags drift in region since champion v1 was registered"
    retrain(settings, wh, WHO_BAD, found)
    assert check(settings, wh, WHO_BAD) is None
    assert _versions(settings) == 2
    assert wh.query("select decided_by from ml.model_decisions order by decided_at") == \
        [("rule",), ("trigger:drift",)]


def test_a_schedule_tick_retrains_once(settings, who_warehouse, monkeypatch) -> None:
    wh = who_warehouse
    _trained_and_scored(settings, wh)
    monkeypatch.setenv("LAKEBOX_WHO_GHO_RETRAIN_SCHEDULE", "0 0 1 1 *")  # yearly
    live = Settings.load()
    made = connect(settings).get_model_version(WHO_GOOD.name, "1").creation_timestamp / 1000
    since = dt.datetime.fromtimestamp(made, dt.UTC).replace(tzinfo=None)
    assert check(live, wh, WHO_BAD, now=since + dt.timedelta(seconds=1)) is None  # no tick since the champion
    next_year = dt.datetime(since.year + 1, 3, 1)
    found = check(live, wh, WHO_BAD, now=next_year)
    assert found is not None and (found.kind, found.evidence) == ("schedule", f"{since.year + 1}-01-01T00:00:00")
    retrain(live, wh, WHO_BAD, found)
    assert check(live, wh, WHO_BAD, now=next_year) is None
    assert _versions(settings) == 2


@pytest.mark.slow
def test_watch_retrains_on_a_trigger_once(settings, who_warehouse, monkeypatch) -> None:
    wh = who_warehouse
    _trained_and_scored(settings, wh)
    wh.release()
    monkeypatch.setenv("LAKEBOX_WHO_GHO_QUALITY_THRESHOLD", "0.5")
    landed: list[int] = []

    def labels(ctx) -> None:  # the pipeline's run that brings the labels, once
        if not landed:
            _land_surprising_labels(ctx.warehouse)
        landed.append(1)

    runs = watch(Settings.load(), [Pipeline("who_gho", (Stage("labels", labels),))], every=0.01, poll=0.01,
                 max_runs=3, models=[WHO_BAD])
    assert runs == 3 and len(landed) == 3
    assert _versions(settings) == 2
    assert wh.query("select kind, version, decision from ml.model_triggers") == [("quality", "2", "challenger")]


def test_the_drift_stage_keeps_live_quality_current(settings, who_warehouse) -> None:
    from lakebox.lake import Lake
    from lakebox.ml import drift_stage, predict_stage, train_stage
    from lakebox.runner import RunContext

    wh = who_warehouse

    def run(run_id: str) -> None:
        ctx = RunContext(settings=settings, lake=Lake.from_settings(settings), warehouse=wh, run_id=run_id,
                         pipeline=WHO_GOOD.pipeline)
        for stage in (predict_stage(WHO_GOOD), train_stage(WHO_GOOD), drift_stage(WHO_GOOD)):
            stage(ctx)

    run("first")  # trains v1 and scores every row with it
    (rows, before), = wh.query("select labelled_rows, value from ml.model_performance where model_version = '1'")
    assert rows == 1140  # the 60 rows awaiting a label are not judged yet
    _land_surprising_labels(wh)
    run("second")
    (rows, after), = wh.query("select labelled_rows, value from ml.model_performance where model_version = '1'")
    assert rows == 1200 and after > before + 0.4  # 60 forecasts 10 years off: +0.5 on the mean
