"""`lakebox ml serve` against a real server on loopback: real models trained on the fixtures'
real data, a real MLflow SQLite store, real HTTP (httpx)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from lakebox.errors import ConfigError
from lakebox.ml import data, train
from lakebox.ml.serving.server import make_catalog, token_for, uvicorn_server
from lakebox.ml.tracking import connect

from .conftest import WHO_BAD, WHO_GOOD

WHO = WHO_GOOD.name
# served on its feature columns, as a declared model is (the protocol's tests; raw inputs:
# test_serving_raw.py)
FEATURES_IN = dataclasses.replace(WHO_GOOD, raw_inputs=None)


@contextmanager
def running(settings, specs, host: str = "127.0.0.1", log=None) -> Iterator[tuple[str, object]]:
    """A real server on a free loopback port, polling the registry; stopped at the end."""
    catalog = make_catalog(settings, specs)
    catalog.start()
    server, sock = uvicorn_server(settings, catalog, host, 0, log)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", catalog
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        catalog.stop()
        sock.close()


@pytest.fixture
def who_trained(settings, who_warehouse):
    """life-expectancy v1 (champion) and v2 (a worse model: challenger)."""
    assert train(settings, who_warehouse, WHO_GOOD).decision.decision == "champion"
    assert train(settings, who_warehouse, WHO_BAD).decision.decision == "challenger"
    return who_warehouse


def _who_rows(warehouse, n: int):
    rows = data.read_rows(warehouse, WHO_GOOD).slice(0, n)
    return rows, {c: rows.column(c).to_pylist() for c in WHO_GOOD.features}


def test_every_request_format_and_the_endpoints(settings, who_trained) -> None:
    rows, columns = _who_rows(who_trained, 3)
    records = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    features = list(WHO_GOOD.features)
    csv = ",".join(features) + "\n" + "\n".join(",".join(str(r[c]) for c in features) for r in records) + "\n"
    with running(settings, [FEATURES_IN]) as (url, _), httpx.Client(base_url=url) as http:
        answers = [
            http.post(f"/models/{WHO}/invocations",
                      json={"dataframe_split": {"columns": features, "data": [list(r.values()) for r in records]}}),
            http.post(f"/models/{WHO}/invocations", json={"dataframe_records": records}),
            http.post(f"/models/{WHO}/invocations", json={"instances": records}),
            http.post(f"/models/{WHO}/invocations", json={"inputs": columns}),
            http.post(f"/models/{WHO}/invocations", content=csv, headers={"Content-Type": "text/csv"}),
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Lakebox-Version"] == "1"
        first = answers[0].json()["predictions"]
        assert len(first) == 3 and all(a.json()["predictions"] == pytest.approx(first) for a in answers)

        by_alias = http.post(f"/models/{WHO}/invocations?alias=challenger", json={"dataframe_records": records})
        by_version = http.post(f"/models/{WHO}/versions/2/invocations", json={"dataframe_records": records})
        assert by_alias.headers["X-Lakebox-Version"] == by_version.headers["X-Lakebox-Version"] == "2"
        assert by_alias.json() == by_version.json() != answers[0].json()

        assert http.get("/ping").status_code == 200
        assert http.get("/health").json() == {"status": "ok", "models": {WHO: ["challenger", "champion"]}}
        assert set(http.get("/version").json()) == {"lakebox", "mlflow"}
        assert http.get("/models").json() == [{"name": WHO, "pipeline": "who_gho", "task": "regression",
                                               "aliases": {"challenger": "2", "champion": "1"},
                                               "versions": ["1", "2"]}]
        described = http.get(f"/models/{WHO}").json()
        assert [c["name"] for c in described["inputs"]["champion"]] == features
        assert {c["name"]: c["type"] for c in described["inputs"]["champion"]}["region"] == "string"
        assert {c["name"]: c["type"] for c in described["inputs"]["champion"]}["prev_value"] == "double"


def test_bad_bodies_get_400_naming_the_columns_unknown_names_404(settings, who_trained, monkeypatch) -> None:
    monkeypatch.setenv("LAKEBOX_SERVE_MAX_BODY", "5000")
    from lakebox.settings import Settings

    settings = Settings.load()
    _, columns = _who_rows(who_trained, 2)
    missing = {k: v for k, v in columns.items() if k != "region"}
    extra = {**columns, "colour": ["red", "blue"]}
    wrong = {**columns, "prev_value": ["high", "low"]}
    nulls = {**columns, "prev_value": [None, 70.0]}
    bodies = {
        "missing region": ({"inputs": missing}, "missing region"),
        "extra column": ({"inputs": extra}, "unexpected colour"),
        "wrong type": ({"inputs": wrong}, "column prev_value expects double"),
        "null number": ({"dataframe_records": [{**{k: v[0] for k, v in nulls.items()}}]}, "prev_value has 1 null"),
        "no rows": ({"dataframe_records": []}, "no rows"),
        "two keys": ({"inputs": columns, "instances": []}, "exactly one of"),
        "a list": ([1, 2], "found a JSON list"),
        "ragged split": ({"dataframe_split": {"columns": list(columns), "data": [[1]]}}, "one per column"),
    }
    with running(settings, [FEATURES_IN]) as (url, _), httpx.Client(base_url=url) as http:
        path = f"/models/{WHO}/invocations"
        for name, (body, said) in bodies.items():
            answer = http.post(path, json=body)
            assert answer.status_code == 400, name
            assert said in answer.json()["error"], (name, answer.text)
            assert "expected columns prev_value (double), prev2_value (double)" in answer.json()["error"], name
        for content, said in ((b"", "empty body"), (b"{not json", "not JSON"), (b"x" * 6000, "LAKEBOX_SERVE_MAX_BODY"),
                              (b"prev_value,region\n1,AFR\n", "missing prev2_value")):
            answer = http.post(path, content=content, headers={"Content-Type": "application/json"
                                                               if b"," not in content else "text/csv"})
            assert answer.status_code == 400 and said in answer.json()["error"], answer.text
            assert "region (string)" in answer.text and "Traceback" not in answer.text
        assert http.post("/models/nope/invocations", json={"inputs": columns}).status_code == 404
        unknown_alias = http.post(f"{path}?alias=staging", json={"inputs": columns})
        assert unknown_alias.status_code == 404 and "challenger, champion" in unknown_alias.json()["error"]
        assert http.post(f"/models/{WHO}/versions/9/invocations", json={"inputs": columns}).status_code == 404
        assert http.get("/models/nope").status_code == 404
        assert http.get("/nowhere").status_code == 404


def test_an_alias_moved_mid_traffic_fails_no_request(settings, who_trained) -> None:
    _, columns = _who_rows(who_trained, 1)
    failures: list[str] = []
    seen: list[tuple[float, str]] = []
    stop = threading.Event()
    with running(settings, [FEATURES_IN]) as (url, _):
        def traffic() -> None:
            with httpx.Client(base_url=url) as http:
                while not stop.is_set():
                    answer = http.post(f"/models/{WHO}/invocations", json={"inputs": columns})
                    if answer.status_code != 200:
                        failures.append(answer.text)
                    else:
                        seen.append((time.monotonic(), answer.headers["X-Lakebox-Version"]))

        clients = [threading.Thread(target=traffic) for _ in range(4)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 5
        while len(seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        moved_at = time.monotonic()
        connect(settings).set_registered_model_alias(WHO, "champion", "2")
        while not any(v == "2" and t > moved_at for t, v in seen[-50:]) and time.monotonic() < moved_at + 5:
            time.sleep(0.02)
        served_new = time.monotonic() - moved_at
        time.sleep(0.2)  # a little more traffic after the swap, to show it stays on v2
        stop.set()
        for client in clients:
            client.join(timeout=10)
    assert failures == []
    assert served_new < 5
    after = [v for t, v in seen if t > moved_at + served_new + 0.1]
    assert after and set(after) == {"2"}
    assert {v for t, v in seen if t < moved_at} == {"1"}


def test_a_version_that_fails_to_load_keeps_the_old_one_serving(settings, who_trained, tmp_path) -> None:
    client = connect(settings)
    _, columns = _who_rows(who_trained, 1)
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with running(settings, [FEATURES_IN]) as (url, catalog), httpx.Client(base_url=url) as http:
        assert str(client.create_model_version(WHO, empty.as_uri()).version) == "3"  # holds no model
        client.set_registered_model_alias(WHO, "champion", "3")
        catalog.refresh()
        answer = http.post(f"/models/{WHO}/invocations", json={"inputs": columns})
        assert answer.status_code == 200 and answer.headers["X-Lakebox-Version"] == "1"
        assert catalog.model(WHO).versions == ("1", "2", "3")
        assert (WHO, "3") in catalog._failed  # warned and alerted once, not on every poll


def test_a_token_is_required_off_loopback(settings, who_trained, monkeypatch) -> None:
    from lakebox.settings import Settings

    with pytest.raises(ConfigError, match="LAKEBOX_SERVE_TOKEN"):
        token_for(settings, "0.0.0.0")
    assert token_for(settings, "127.0.0.1") is None
    monkeypatch.setenv("LAKEBOX_SERVE_TOKEN", "s3cret-token")
    with_token = Settings.load()
    assert token_for(with_token, "0.0.0.0") == "s3cret-token"
    _, columns = _who_rows(who_trained, 1)
    with running(with_token, [FEATURES_IN]) as (url, _), httpx.Client(base_url=url) as http:
        path = f"/models/{WHO}/invocations"
        refused = http.post(path, json={"inputs": columns})
        assert refused.status_code == 401 and "s3cret" not in refused.text
        assert http.post(path, json={"inputs": columns}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/models").status_code == 401
        assert http.get("/ping").status_code == 200
        ok = http.post(path, json={"inputs": columns}, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
