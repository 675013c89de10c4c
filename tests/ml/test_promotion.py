"""`lakebox ml promote`, `rollback`, `history`: each move of the champion alias is a row of
ml.model_decisions (from, to, by whom, why), on a real MLflow store and real models; a
running server serves the moved alias."""

from __future__ import annotations

import getpass

import httpx
from typer.testing import CliRunner

from lakebox.ml import train
from lakebox.ml.tracking import connect
from lakebox.ml_cli import ml_app

from .conftest import WHO_BAD, WHO_GOOD
from .test_serving import FEATURES_IN, _who_rows, running

WHO = WHO_GOOD.name


def _moves(warehouse):
    return warehouse.query("select version, from_version, decision, decided_by, reason, value "
                           "from ml.model_decisions where model_name = ? order by decided_at", [WHO])


def test_promote_rollback_history(settings, who_warehouse, who_pipeline) -> None:
    first = train(settings, who_warehouse, WHO_GOOD)
    worse = train(settings, who_warehouse, WHO_BAD)
    assert (first.decision.decision, worse.decision.decision) == ("champion", "challenger")  # never promoted worse
    client = connect(settings)
    cli = CliRunner()
    user = f"user:{getpass.getuser()}"

    promoted = cli.invoke(ml_app, ["promote", WHO, "2", "--reason", "try the mean model live"])
    assert promoted.exit_code == 0, promoted.output
    assert "champion v1 -> v2" in promoted.output
    assert str(client.get_model_version_by_alias(WHO, "champion").version) == "2"
    assert "challenger" not in client.get_registered_model(WHO).aliases  # promoted: no longer a challenger

    back = cli.invoke(ml_app, ["rollback", WHO, "--reason", "mean model forecasts badly"])
    assert back.exit_code == 0, back.output
    assert str(client.get_model_version_by_alias(WHO, "champion").version) == "1"

    rows = _moves(who_warehouse)
    assert [r[:4] for r in rows] == [("1", None, "champion", "rule"), ("2", None, "challenger", "rule"),
                                     ("2", "1", "champion", user), ("1", "2", "champion", user)]
    assert rows[2][4] == "try the mean model live" and rows[3][4] == "mean model forecasts badly"
    assert rows[2][5] == worse.decision.value and rows[3][5] == first.decision.value  # the version's own figure

    shown = cli.invoke(ml_app, ["history", WHO, "--json"])
    assert shown.exit_code == 0, shown.output
    assert "mean model forecasts badly" in shown.output and user in shown.output

    again = cli.invoke(ml_app, ["rollback", WHO, "--to", "1", "--reason", "x"])
    assert again.exit_code == 2 and "already the champion" in again.output
    missing = cli.invoke(ml_app, ["promote", WHO, "9", "--reason", "x"])
    assert missing.exit_code == 2 and "no version '9'" in missing.output
    blank = cli.invoke(ml_app, ["promote", WHO, "2", "--reason", " "])
    assert blank.exit_code == 2
    assert len(_moves(who_warehouse)) == 4  # refused moves leave no row
    assert str(client.get_model_version_by_alias(WHO, "champion").version) == "1"


def test_a_promotion_is_served_without_restart(settings, who_warehouse, who_pipeline) -> None:
    train(settings, who_warehouse, WHO_GOOD)
    train(settings, who_warehouse, WHO_BAD)
    _, columns = _who_rows(who_warehouse, 1)
    with running(settings, [FEATURES_IN]) as (url, catalog), httpx.Client(base_url=url) as http:
        path = f"/models/{WHO}/invocations"
        assert http.post(path, json={"inputs": columns}).headers["X-Lakebox-Version"] == "1"
        assert CliRunner().invoke(ml_app, ["promote", WHO, "2", "--reason", "r"]).exit_code == 0
        catalog.refresh()  # what the poll thread does every LAKEBOX_SERVE_POLL seconds
        assert http.post(path, json={"inputs": columns}).headers["X-Lakebox-Version"] == "2"
