"""Row-count anomalies: a run loading 5% of the usual rows flags, a normal weekly retail
rhythm does not, quiet data does not flag on tiny changes, a drop to zero always flags."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import orjson

from lakebox.lake import Lake
from lakebox.observability import flush_alerts
from lakebox.observability.anomalies import Rule, record_and_judge
from lakebox.runner import Pipeline, Stage, StageResult, run_pipeline
from lakebox.settings import Settings
from lakebox.warehouse import open_warehouse
from tests.observability.conftest import Receiver, wait_for, with_env

MONDAY = dt.date(2026, 1, 5)


def retail_day(day: dt.date, rng: random.Random) -> int:
    """150 stores' sales lines: busier Fridays and weekends, a few percent of noise."""
    rhythm = {4: 1.2, 5: 1.6, 6: 1.35}.get(day.weekday(), 1.0)
    return round(12_000 * rhythm * rng.uniform(0.96, 1.04))


def judge_days(settings: Settings, counts: list[tuple[dt.date, int]]) -> list[list[str]]:
    with open_warehouse(settings) as wh:
        return [[a.detail for a in record_and_judge(wh, Rule(), f"retail-{day}", "retail",
                                                    {("batches", "sales"): n}, day)]
                for day, n in counts]


def test_a_normal_weekly_retail_rhythm_does_not_flag_and_a_five_percent_load_does(settings: Settings) -> None:
    rng = random.Random(22)
    days = [MONDAY + dt.timedelta(days=i) for i in range(42)]
    flagged = judge_days(settings, [(d, retail_day(d, rng)) for d in days])
    assert flagged == [[]] * 42

    tuesday = days[-1] + dt.timedelta(days=2)
    [[why]] = judge_days(settings, [(tuesday, round(retail_day(tuesday, rng) * 0.05))])
    assert "outside" in why and "Tuesday runs" in why
    with open_warehouse(settings) as wh:
        rows = wh.query("select run_id, kind, dataset, row_count from ops.anomalies")
        assert rows == [(f"retail-{tuesday}", "batches", "sales", rows[0][3])]
        assert wh.query("select count(*) from ops.table_stats")[0][0] == 43


def test_quiet_data_does_not_flag_on_tiny_changes_and_a_drop_to_zero_always_flags(settings: Settings) -> None:
    days = [MONDAY + dt.timedelta(days=i) for i in range(12)]
    steady = [(d, 5000) for d in days[:10]] + [(days[10], 5003), (days[11], 0)]
    flagged = judge_days(settings, steady)
    assert flagged[:11] == [[]] * 11
    [why] = flagged[11]
    assert why.startswith("dropped to 0 rows")


def test_the_third_run_is_the_first_judged(settings: Settings) -> None:
    days = [MONDAY + dt.timedelta(days=i) for i in range(3)]
    flagged = judge_days(settings, [(days[0], 1000), (days[1], 20), (days[2], 50)])
    assert flagged[:2] == [[], []], "one earlier run is no history to judge by"
    assert flagged[2] == [], "nor two that disagree by 50x: their spread is the bound"
    [[why]] = judge_days(settings, [(days[2] + dt.timedelta(days=1), 0)])
    assert why.startswith("dropped to 0 rows"), "however wide the bounds, a drop to zero flags"


def shop(rows: list[int]) -> Pipeline:
    """A pipeline landing one batch of rows[i] rows into raw.shop on its i-th run."""
    runs = iter(rows)

    def land(ctx: Any) -> StageResult:
        n = next(runs)
        wh, now = ctx.warehouse, dt.datetime.now(dt.UTC).replace(tzinfo=None)
        wh.execute("insert into ops.batches values (?, 'shop', ?, 'x', 1, ?, 'loaded', ?, ?, ?, null, '{}')",
                   [f"b-{ctx.run_id}", f"raw/shop/{ctx.run_id}.csv", n, now, now, ctx.run_id])
        wh.execute(f"create or replace table raw.shop as select range as id, 'b-{ctx.run_id}' as batch_id "
                   f"from range({n})")
        return StageResult(rows_in=n, rows_out=n)

    return Pipeline("shop", (Stage("land", land),))


def test_a_run_loading_five_percent_warns_counts_and_alerts(settings: Settings, receiver: Receiver) -> None:
    alerting = with_env(settings, LAKEBOX_ALERT_WEBHOOK_URL=receiver.url)
    pipeline = shop([1000, 1010, 990, 1000, 50])
    with open_warehouse(alerting) as wh:
        outcomes = [run_pipeline(pipeline, alerting, Lake.from_settings(alerting), wh) for _ in range(5)]
        assert [o.status for o in outcomes] == ["success"] * 5, "an anomaly warns; it does not fail the run"
        flagged = wh.query("select run_id, kind, dataset, row_count from ops.anomalies order by kind")
        stats = wh.query("select count(*) from ops.table_stats where pipeline = 'shop'")[0][0]
    last = outcomes[-1].run_id
    assert flagged == [(last, "batches", "shop", 50), (last, "raw", "raw.shop", 50)]
    assert stats == 10

    logged = [orjson.loads(line) for p in settings.logs_dir.glob("*") for line in p.read_text().splitlines()]
    warnings = [r for r in logged if r.get("msg", "").startswith("row-count anomaly")]
    assert {(r["run_id"], r["dataset"]) for r in warnings} == {(last, "shop"), (last, "raw.shop")}

    from lakebox.observability.metrics import PROCESS

    assert PROCESS.get_sample_value("lakebox_row_count_anomalies_total",
                                    {"pipeline": "shop", "kind": "raw", "dataset": "raw.shop"}) == 1.0

    assert flush_alerts(5)
    bodies = wait_for(lambda: [orjson.loads(b) for b in receiver.bodies() if b"anomaly" in b], what="the alert")
    [alert] = bodies
    assert alert["kind"] == "anomaly" and alert["run_id"] == last
    assert {a["dataset"] for a in alert["anomalies"]} == {"shop", "raw.shop"}
