"""Each auth kind of a declarative REST source against a loopback stand-in: sent as
configured on every page, a missing or refused credential failing with the variable named
(never its value), and no secret in a log, an error, the ledger, the lake or quarantine."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.declarative.standin_api import Credentials, StandInApi, pipeline, run_fetch, settings_for

# kind -> (auth table, the environment holding the right credentials, the variables it names)
KINDS = {
    "bearer": ('{ type = "bearer", token_env = "STAND_BEARER" }', lambda c: {"STAND_BEARER": c.token}),
    "key_header": ('{ type = "api_key", name = "X-Api-Key", location = "header", key_env = "STAND_APIKEY" }',
                   lambda c: {"STAND_APIKEY": c.key}),
    "key_query": ('{ type = "api_key", name = "api_key", location = "query", key_env = "STAND_APIKEY" }',
                  lambda c: {"STAND_APIKEY": c.key}),
    "basic": ('{ type = "basic", username_env = "STAND_USER", password_env = "STAND_PASS" }',
              lambda c: {"STAND_USER": c.user, "STAND_PASS": c.password}),
}


@pytest.fixture
def logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """lakebox's JSON-lines logs, to stderr and the home's logs/, as a user's run has them."""
    yield
    logger = logging.getLogger("lakebox")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def secure(tmp_path: Path, api: StandInApi, kind: str, path: str = "") -> object:
    auth, _ = KINDS[kind]
    return pipeline(tmp_path, f'[source]\ntype = "rest"\nbase_url = "{api.url}"\nauth = {auth}\n'
                              f'[[source.resources]]\nname = "items"\npath = "{path or "/v1/secure/" + kind}"\n'
                              'paginator = "header_link"\n')


def leaks(home: Path, secrets: list[str], *texts: str | None) -> list[str]:
    """Where any spelling of a secret shows: the given texts, and every file of the home
    (lake objects and manifests, quarantine errors.json, logs, the warehouse)."""
    from urllib.parse import quote, quote_plus

    spellings = {form for s in secrets for form in (s, quote(s, safe=""), quote_plus(s))}
    found = [f"text {i}" for i, text in enumerate(texts) if text and any(s in text for s in spellings)]
    return found + [str(p) for p in home.rglob("*") if p.is_file()
                    and any(s.encode() in p.read_bytes() for s in spellings)]


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_auth_kind_is_sent_on_every_page_and_kept_secret(tmp_path: Path, api: StandInApi, kind: str,
                                                              capfd: pytest.CaptureFixture[str], logs: None) -> None:
    from lakebox.log import configure_logging

    home = tmp_path / "home"
    configure_logging(home / "logs", "DEBUG")
    config = secure(tmp_path, api, kind)
    env = KINDS[kind][1](api.credentials)
    out = run_fetch(home, config, **env)
    assert out.run.status == "success", out.run.error
    assert out.pages("stand_items") == [5, 5, 5, 5, 3] and len(api.seen) == 5  # every page was let in
    if kind == "key_query":  # the next links echo the key; it is sent once, as configured
        assert all(r.query["api_key"] == api.credentials.key for r in api.seen)
        assert all("api_key" not in meta["request"] for _, _, meta, _, _ in out.ledger)
    captured = capfd.readouterr()
    assert leaks(home, list(env.values() if kind != "basic" else [api.credentials.password]),
                 captured.out, captured.err) == []
    assert list((home / "logs").glob("*.jsonl")) and list((home / "lake").rglob("*.manifest.json"))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_refused_credential_fails_naming_its_variable_not_its_value(tmp_path: Path, api: StandInApi,
                                                                      kind: str) -> None:
    wrong = Credentials(token="tok-wrong-1234", key="key-wrong-1234", password="pw-wrong-1234")
    env = KINDS[kind][1](wrong)
    out = run_fetch(tmp_path / "home", secure(tmp_path, api, kind), **env)
    error = out.run.error or ""
    assert out.run.status == "failed" and len(api.seen) == 1 and out.ledger == []
    assert "source stand_items: the API refused the request (HTTP 401)" in error, error
    assert " and ".join(env) in error  # the variables, by name
    assert leaks(tmp_path / "home", [v for k, v in env.items() if k != "STAND_USER"], error) == []


@pytest.mark.parametrize("kind, missing", [("bearer", "STAND_BEARER"), ("key_header", "STAND_APIKEY"),
                                           ("key_query", "STAND_APIKEY"), ("basic", "STAND_PASS")])
def test_a_missing_credential_fails_before_anything_is_asked(tmp_path: Path, api: StandInApi, kind: str,
                                                             missing: str) -> None:
    env = {k: v for k, v in KINDS[kind][1](api.credentials).items() if k != missing}
    out = run_fetch(tmp_path / "home", secure(tmp_path, api, kind), **env)
    assert out.run.status == "failed" and api.seen == [] and out.ledger == []
    assert f"comes from the environment variable {missing}, which is not set; set {missing}" in (out.run.error or "")
    assert out.run.error.startswith("source stand: ")  # once for the pipeline, not once per resource


def test_a_query_key_stays_out_of_a_quarantined_request_and_is_sent_when_it_is_asked_again(
        tmp_path: Path, api: StandInApi, logs: None) -> None:
    from lakebox.log import configure_logging
    from lakebox.warehouse import open_warehouse

    home = tmp_path / "home"
    configure_logging(home / "logs", "DEBUG")
    key = api.credentials.key
    config = pipeline(tmp_path, f'[source]\ntype = "rest"\nbase_url = "{api.url}"\n'
                                f'auth = {KINDS["key_query"][0]}\n'
                                '[[source.resources]]\nname = "items"\npath = "/v1/broken"\ndata_selector = "data"\n'
                                'paginator = { type = "page_number", total_path = "total_pages" }\n')
    broken = run_fetch(home, config, STAND_APIKEY=key, LAKEBOX_HTTP_MAX_ATTEMPTS="2")
    assert broken.run.status == "failed" and "unreadable responses are quarantined" in (broken.run.error or "")
    assert broken.quarantine == [("stand_items", "open")]
    with open_warehouse(settings_for(home)) as wh:
        kept = "".join(str(row) for row in wh.query("select * from ops.quarantine") + wh.query("select * from ops.batches"))
    assert leaks(home, [key], broken.run.error, kept) == []
    assert list((home / "lake" / "quarantine").rglob("*.errors.json"))

    api.broken, api.seen = False, []
    again = run_fetch(home, config, STAND_APIKEY=key)
    assert again.quarantine == [("stand_items", "resolved")]
    assert api.seen[0].query == {"page": "2", "api_key": key}  # the quarantined request, with the key added again
    assert leaks(home, [key], again.run.error) == []
