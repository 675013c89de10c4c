"""A declarative REST source when the API misbehaves, handled as for the bundled sources:
Retry-After honoured, a runaway next link stopped, an unreadable page quarantined while the
other resources load, and one failing resource not stopping the others."""

from __future__ import annotations

from pathlib import Path

from tests.declarative.standin_api import StandInApi, pipeline, run_fetch


def resources(api: StandInApi, *tables: str) -> str:
    return f'[source]\ntype = "rest"\nbase_url = "{api.url}"\n' + "".join(
        f"[[source.resources]]\n{table}\n" for table in tables)


GOOD = 'name = "good"\npath = "/v1/single"'


def test_retry_after_is_honoured(tmp_path: Path, api: StandInApi) -> None:
    config = pipeline(tmp_path, resources(api, 'name = "flaky"\npath = "/v1/flaky"'))
    out = run_fetch(tmp_path / "home", config)
    assert out.run.status == "success", out.run.error
    first, second = api.seen
    assert second.at - first.at >= 1.0  # the 429's Retry-After: 1, not the 0.01 s backoff
    assert out.pages("stand_flaky") == [23]


def test_a_repeated_next_link_stops_the_fetch(tmp_path: Path, api: StandInApi) -> None:
    config = pipeline(tmp_path, resources(
        api, 'name = "loop"\npath = "/v1/runaway_same"\ndata_selector = "data"\n'
             'paginator = { type = "json_link", next_url_path = "links.next" }', GOOD))
    out = run_fetch(tmp_path / "home", config)
    error = out.run.error or ""
    assert out.run.status == "failed"
    assert "source stand_loop: the API's next page is one it already sent" in error, error
    assert error.endswith("; not asked in this run: good")  # a runaway API: its other resources wait
    assert [r.path for r in api.seen] == ["/v1/runaway_same", "/v1/runaway_same"]
    assert out.pages("stand_loop") == [2, 2]  # what landed stays, pending, for the next run's load


def test_a_next_cursor_that_never_ends_stops_at_the_page_bound(tmp_path: Path, api: StandInApi) -> None:
    config = pipeline(tmp_path, resources(api, 'name = "loop"\npath = "/v1/runaway_new"\n'
                                               'data_selector = "result.items"\npaginator = "cursor"'))
    out = run_fetch(tmp_path / "home", config, LAKEBOX_HTTP_MAX_PAGES="5")
    assert out.run.status == "failed"
    assert "bound of 5 pages per run (LAKEBOX_HTTP_MAX_PAGES)" in (out.run.error or ""), out.run.error
    assert len(api.seen) == 5 and out.pages("stand_loop") == [2] * 5


def test_an_unreadable_page_is_quarantined_and_the_other_resources_land(tmp_path: Path, api: StandInApi) -> None:
    config = pipeline(tmp_path, resources(
        api, 'name = "broken"\npath = "/v1/broken"\ndata_selector = "data"\n'
             'paginator = { type = "page_number", total_path = "total_pages" }', GOOD))
    out = run_fetch(tmp_path / "home", config, LAKEBOX_HTTP_MAX_ATTEMPTS="2")
    assert out.run.status == "partial", out.run.error  # the open item, not a failure: the good one loads
    assert out.quarantine == [("stand_broken", "open")]
    assert sorted((s, rows or 0, status) for s, rows, _, _, status in out.ledger) == [
        ("stand_broken", 0, "quarantined"), ("stand_broken", 5, "landed"), ("stand_good", 23, "landed")]
    assert api.asked("/v1/broken") == [{"page": "1"}, {"page": "2"}, {"page": "2"}]  # retried, then kept
    kept = [p.read_bytes() for p in (tmp_path / "home" / "lake" / "quarantine" / "stand_broken").rglob("*.json")
            if not p.name.endswith((".errors.json", ".manifest.json"))]
    assert kept == [b'{"data": [{"id": 5']  # as received
    assert "data_selector 'data'" in (tmp_path / "home" / "lake" / "quarantine").rglob("*.errors.json").__next__(
    ).read_text()


def test_a_failing_resource_does_not_stop_the_others(tmp_path: Path, api: StandInApi) -> None:
    config = pipeline(tmp_path, resources(api, 'name = "gone"\npath = "/v1/nowhere"', GOOD))
    out = run_fetch(tmp_path / "home", config)
    error = out.run.error or ""
    assert out.run.status == "failed"
    assert error.startswith("source stand: 1 of 2 resources failed (gone: source stand_gone: "
                            f"{api.url}/v1/nowhere was not found (HTTP 404); check the resource's path"), error
    assert "the other 1 were fetched" in error
    assert out.pages("stand_good") == [23] and out.pages("stand_gone") == []
