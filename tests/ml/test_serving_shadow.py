"""Shadow and canary on a real server: the challenger scores every request after the
answer, both answers land in ml.online_predictions (written in batches off the request
path); `lakebox ml canary` sends a share of requests to the challenger, sticky by key."""

from __future__ import annotations

import time

import httpx
from typer.testing import CliRunner

from lakebox.ml import train
from lakebox.ml.serving.online_log import OnlineLog, warehouse_writer
from lakebox.ml_cli import ml_app

from .conftest import WHO_BAD, WHO_GOOD
from .test_serving import FEATURES_IN, _who_rows, running

WHO = WHO_GOOD.name


def _two_versions(settings, warehouse) -> None:
    assert train(settings, warehouse, WHO_GOOD).decision.decision == "champion"
    assert train(settings, warehouse, WHO_BAD).decision.decision == "challenger"


def test_every_request_is_shadowed_and_both_answers_kept(settings, who_warehouse) -> None:
    _two_versions(settings, who_warehouse)
    _, columns = _who_rows(who_warehouse, 2)
    log = OnlineLog(warehouse_writer(settings), flush_seconds=0.2).start()
    ids = []
    with running(settings, [FEATURES_IN], log=log) as (url, _), httpx.Client(base_url=url) as http:
        for _ in range(30):
            answer = http.post(f"/models/{WHO}/invocations", json={"inputs": columns},
                               headers={"Authorization": "Bearer not-logged"})
            assert answer.status_code == 200 and answer.headers["X-Lakebox-Role"] == "champion"
            ids.append(answer.headers["X-Request-Id"])
        deadline = time.monotonic() + 10
        while log.written < 120 and time.monotonic() < deadline:  # 30 requests x 2 rows x 2 versions
            time.sleep(0.05)
    log.stop()
    rows = who_warehouse.query("select role, model_version, count(*), count(distinct request_id), "
                               "min(latency_ms) >= 0 from ml.online_predictions group by 1, 2 order by 1")
    assert rows == [("challenger", "2", 60, 30, True), ("champion", "1", 60, 30, True)]
    assert {r[0] for r in who_warehouse.query("select distinct request_id from ml.online_predictions")} == set(ids)
    agree = who_warehouse.query("select count(*) from ml.online_predictions c join ml.online_predictions s "
                                "using (request_id, row) where c.role = 'champion' and s.role = 'challenger' "
                                "and c.prediction <> s.prediction")
    assert agree == [(60,)]  # the mean model answers otherwise: both answers are really there
    dump = who_warehouse.query("select * from ml.online_predictions")
    assert "not-logged" not in repr(dump)


def test_canary_share_sticky_keys_and_stop(settings, who_warehouse, who_pipeline) -> None:
    _two_versions(settings, who_warehouse)
    _, columns = _who_rows(who_warehouse, 1)
    cli = CliRunner()
    set_to = cli.invoke(ml_app, ["canary", WHO, "--percent", "20"])
    assert set_to.exit_code == 0 and "20% of requests go to challenger v2" in set_to.output
    with running(settings, [FEATURES_IN]) as (url, catalog), httpx.Client(base_url=url) as http:
        path = f"/models/{WHO}/invocations"
        roles = [http.post(path, json={"inputs": columns}, headers={"X-Request-Key": f"user-{i}"})
                 .headers["X-Lakebox-Role"] for i in range(2000)]
        share = roles.count("canary") / len(roles) * 100
        assert 17 <= share <= 23, share
        sticky = {http.post(path, json={"inputs": columns}, headers={"X-Request-Key": "user-7"})
                  .headers["X-Lakebox-Version"] for _ in range(20)}
        assert len(sticky) == 1
        assert cli.invoke(ml_app, ["canary", WHO, "--percent", "0"]).exit_code == 0
        catalog.refresh()
        after = {http.post(path, json={"inputs": columns}, headers={"X-Request-Key": f"user-{i}"})
                 .headers["X-Lakebox-Role"] for i in range(200)}
        assert after == {"champion"}
