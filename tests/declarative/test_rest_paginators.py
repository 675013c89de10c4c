"""A declarative REST pipeline's fetch against a loopback stand-in: each of dlt's paginators
pages through one known dataset and lands every record exactly once; data_selector reaches
nested lists; column names are normalised when read; incremental sends initial_value, then
the cursor."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lakebox.errors import ConfigError
from lakebox.settings import PipelineSettings
from tests.declarative.standin_api import (
    StandInApi,
    pipeline,
    read_landed,
    record,
    run_fetch,
    settings_for,
)


def toml(api: StandInApi, resources: str, source: str = "") -> str:
    return f'description = "stand-in"\n[source]\ntype = "rest"\nbase_url = "{api.url}"\n{source}\n{resources}'


# style -> (path, data_selector, paginator, the queries the API is asked, pages in the ledger)
PAGE = [{"page": str(n)} for n in range(1, 6)]
STYLES = {
    "single_page": ("/v1/single", "", '{ type = "single_page" }', [{}], [23]),
    "header_link": ("/v1/header_link", "", '{ type = "header_link" }', [{}] + PAGE[1:], [5, 5, 5, 5, 3]),
    "json_link": ("/v1/json_link", "data", '{ type = "json_link", next_url_path = "links.next" }',
                  [{}] + PAGE[1:], [5, 5, 5, 5, 3]),
    "cursor": ("/v1/cursor", "result.items", '{ type = "cursor", cursor_path = "cursors.next", cursor_param = "cursor" }',
               [{}] + [{"cursor": f"after-{n}"} for n in (4, 9, 14, 19)], [5, 5, 5, 5, 3]),
    "offset with a total": ("/v1/offset", "data", '{ type = "offset", limit = 5, total_path = "meta.total" }',
                            [{"offset": str(n), "limit": "5"} for n in (0, 5, 10, 15, 20)], [5, 5, 5, 5, 3]),
    # the server caps pages at 3 and gives no total: a short page is not the end, an empty one is
    "offset until empty": ("/v1/offset_capped", "data", '{ type = "offset", limit = 5 }',
                           [{"offset": str(n), "limit": "5"} for n in range(0, 24, 3)] + [{"offset": "23", "limit": "5"}],
                           [3] * 7 + [2]),
    "page_number with a total": ("/v1/page_number", "data", '{ type = "page_number", total_path = "total_pages" }',
                                 PAGE, [5, 5, 5, 5, 3]),
    "page_number from 0": ("/v1/page_number0", "data",
                           '{ type = "page_number", page_param = "page", base_page = 0, total_path = "total_pages" }',
                           [{"page": str(n)} for n in range(5)], [5, 5, 5, 5, 3]),
    "page_number until empty": ("/v1/page_number_open", "data", '{ type = "page_number" }',
                                PAGE + [{"page": "6"}], [5, 5, 5, 5, 3]),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_each_paginator_lands_every_record_once(tmp_path: Path, api: StandInApi, style: str) -> None:
    path, selector, paginator, asked, pages = STYLES[style]
    config = pipeline(tmp_path, toml(api, f'[[source.resources]]\nname = "items"\npath = "{path}"\n'
                                          f'data_selector = "{selector}"\npaginator = {paginator}\n'))
    out = run_fetch(tmp_path / "home", config)
    assert out.run.status == "success", out.run.error
    assert api.asked(path) == asked
    assert out.pages("stand_items") == pages and out.run.rows_in == 23
    assert {s for s, *_ in out.ledger} == {"stand_items"}  # the ledger source is <pipeline>_<resource>
    columns, rows = read_landed(tmp_path / "home", config, "items")
    assert columns == ["id", "country_name", "updated_at", "nested"]  # `Country Name` normalised as dlt does
    assert sorted(row[0] for row in rows) == list(range(23))  # every record, once
    assert sorted(rows)[7][1:3] == ("C7", "2024-01-08T00:00:00Z")


def test_a_resource_takes_the_source_paginator_unless_it_has_its_own(tmp_path: Path, api: StandInApi) -> None:
    config = pipeline(tmp_path, toml(
        api,
        '[[source.resources]]\nname = "pages"\npath = "/v1/page_number"\ndata_selector = "data"\n'
        '[[source.resources]]\nname = "all"\npath = "v1/single"\npaginator = "single_page"\n'
        '[[source.resources]]\nname = "filtered"\npath = "/v1/page_number"\ndata_selector = "$.data"\n'
        'params = { kind = "a", n = 2 }\n',
        source='paginator = { type = "page_number", total_path = "total_pages" }'))
    out = run_fetch(tmp_path / "home", config)
    assert out.run.status == "success", out.run.error
    assert out.pages("stand_pages") == out.pages("stand_filtered") == [5, 5, 5, 5, 3]
    assert out.pages("stand_all") == [23] and api.asked("/v1/single") == [{}]
    assert api.asked("/v1/page_number")[5:] == [{"kind": "a", "n": "2", "page": str(n)} for n in range(1, 6)]
    assert out.run.rows_in == 69


def test_records_deep_in_the_page_read_with_their_neighbours_declared(tmp_path: Path, api: StandInApi) -> None:
    """The cursor pages hold `result.count` beside `result.items` and `cursors` beside
    `result`: each is declared, and only the records become rows."""
    config = pipeline(tmp_path, toml(api, '[[source.resources]]\nname = "items"\npath = "/v1/cursor"\n'
                                          'data_selector = "result.items"\npaginator = "cursor"\n'))
    out = run_fetch(tmp_path / "home", config)
    assert out.run.status == "success", out.run.error
    columns, rows = read_landed(tmp_path / "home", config, "items")
    assert len(rows) == 23 and "count" not in columns and "cursors" not in columns
    assert sorted(rows)[0] == (0, "C0", "2024-01-01T00:00:00Z", '{"x":0}')  # a nested object stays JSON


@pytest.mark.parametrize("cursor_path, initial, first_cursor, second_asked, second_cursor", [
    ("updated_at", "2024-01-03T00:00:00Z", "2024-01-23T00:00:00Z", "2024-01-23T00:00:00Z", "2024-01-25T00:00:00Z"),
    ("id", "2", "22", "22", "24"),  # a number: 22 is newer than 9, not older
])
def test_incremental_sends_initial_value_then_the_cursor(tmp_path: Path, api: StandInApi, cursor_path: str,
                                                          initial: str, first_cursor: str, second_asked: str,
                                                          second_cursor: str) -> None:
    config = pipeline(tmp_path, toml(
        api, '[[source.resources]]\nname = "updates"\npath = "/v1/updates"\ndata_selector = "data"\n'
             'paginator = { type = "page_number", total_path = "total_pages" }\n'
             f'incremental = {{ cursor_path = "{cursor_path}", param = "since", initial_value = "{initial}" }}\n'))
    home = tmp_path / "home"
    first = run_fetch(home, config)
    assert first.run.status == "success", first.run.error
    assert api.asked("/v1/updates") == [{"since": initial, "page": str(n)} for n in range(1, 6)]
    assert first.run.rows_in == 21  # records 2..22
    assert first.state == {("stand_updates", "cursor"): first_cursor}

    api.seen.clear()
    api.records += [record(23), record(24)]
    second = run_fetch(home, config)
    assert second.run.status == "success", second.run.error
    assert api.asked("/v1/updates") == [{"since": second_asked, "page": "1"}]  # from the cursor, as stored
    assert second.run.rows_in == 3  # 22 again (the API's `since` is inclusive), 23, 24
    assert second.state == {("stand_updates", "cursor"): second_cursor}


def test_the_base_url_setting_overrides_the_file(tmp_path: Path, api: StandInApi) -> None:
    config = pipeline(tmp_path, '[source]\ntype = "rest"\nbase_url = "http://127.0.0.1:9"\n'
                                '[[source.resources]]\nname = "items"\npath = "/v1/single"\n')
    settings = settings_for(tmp_path / "home")
    declared = PipelineSettings("stand", {"base_url": api.url}, {"base_url": "LAKEBOX_STAND_BASE_URL"})
    settings = dataclasses.replace(settings, pipelines={**settings.pipelines, "stand": declared})
    out = run_fetch(tmp_path / "home", config, settings)
    assert out.run.status == "success", out.run.error
    assert out.pages("stand_items") == [23]


def test_without_a_base_url_the_error_names_the_key_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:  # refused when the file is read, before anything runs
        pipeline(tmp_path, '[source]\ntype = "rest"\n[[source.resources]]\nname = "items"\npath = "/x"\n')
    assert "pipeline.toml:1: source.base_url: missing" in str(refused.value)
    assert "LAKEBOX_<PIPELINE>_BASE_URL" in str(refused.value)


def test_offset_paging_without_a_page_size_is_refused() -> None:
    from lakebox.declarative.config import PaginatorConfig
    from lakebox.declarative.rest import pagination

    with pytest.raises(ConfigError, match=r"paginator\.limit: offset paging needs the page size"):
        pagination(PaginatorConfig(type="offset"), "pipeline.toml: source.resources[items].paginator")
