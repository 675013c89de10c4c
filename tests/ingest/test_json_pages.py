"""The JSON page reader: rows from pages whose records sit at `$.records`, `$.value` or `$`,
parsed several at once when their shape agrees, one at a time when it does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from lakebox.errors import ConfigError
from lakebox.ingest.json_pages import PageReader, records_at, records_path

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def rows_of(reader: PageReader, con: duckdb.DuckDBPyConnection, uris: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every page's rows, read as the loader reads them (prepare once, then each page)."""
    reader.prepare(con, uris)
    out = {}
    for uri in uris:
        con.execute(f"create or replace temp table page as {reader.select_sql(con, uri)}")
        out[uri] = con.execute("select * from page order by 1").fetchall()
    return out


def write(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(doc))
    return str(path)


@pytest.mark.parametrize("path, wrap", [
    ("$.records", lambda rs, last: {"records": rs, "next_cursor": None if last else "c"}),
    ("$.value", lambda rs, last: {"@odata.context": "x", "@odata.count": 5, "value": rs}),
    ("$", lambda rs, last: rs),
])
def test_pages_read_as_rows_wherever_the_records_are(tmp_path: Path, path: str, wrap: Any) -> None:
    pages = [[{"id": 1, "name": "a", "meta": {"k": 1}}, {"id": 2, "name": "b", "meta": {"k": 2}}],
             [{"id": 3, "name": "c", "meta": {"k": 3}}],
             [{"id": 4, "name": None, "meta": None, "extra": 1.5}]]  # another shape: read alone
    uris = [write(tmp_path, f"p{i}.json", wrap(rs, i == 2)) for i, rs in enumerate(pages)]
    con = duckdb.connect()
    reader = PageReader(path)
    rows = rows_of(reader, con, uris)
    assert rows[uris[0]] == [(1, "a", '{"k":1}'), (2, "b", '{"k":2}')]  # nested objects stay JSON
    assert rows[uris[1]] == [(3, "c", '{"k":3}')]
    assert rows[uris[2]] == [(4, None, None, 1.5)]
    assert [c[0] for c in con.execute("select * from page").description] == ["id", "name", "meta", "extra"]
    for uri, records in zip(uris, pages, strict=True):
        assert len(records_at(orjson.loads(Path(uri).read_bytes()), path)) == len(records)


def test_an_unreadable_page_is_named_alone(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", {"records": [{"id": 1}]})
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"records": [{"id": 1}, ')
    con = duckdb.connect()
    reader = PageReader("$.records")
    reader.prepare(con, [good, str(bad)])
    assert con.execute(reader.select_sql(con, good)).fetchall() == [(1,)]
    with pytest.raises(duckdb.Error):
        con.execute(reader.select_sql(con, str(bad))).fetchall()


def test_records_path_forms() -> None:
    assert records_at({"value": [1]}, "$.value") == records_at({"value": [1]}, "value") == [1]
    assert records_at([1, 2], "$") == records_at([1, 2], "") == [1, 2]
    assert records_at({"result": {"items": [3]}}, "result.items") == [3]
    assert records_at({"result": {"items": [3]}}, "$.result.items") == [3]
    assert records_path("$.@odata.x") == ("@odata", "x") and records_path("$values") == ("$values",)
    with pytest.raises(KeyError):
        records_at({"data": []}, "$.records")
    with pytest.raises(TypeError):
        records_at({"records": {}}, "$.records")
    with pytest.raises(TypeError, match="inside a list"):
        records_at({"result": [{"items": []}]}, "result.items")
    for bad in ("data..items", "data.items[*]", "data items", "data."):
        with pytest.raises(ConfigError, match="records path"):
            PageReader(bad)


def test_a_recorded_gho_indicator(tmp_path: Path) -> None:
    fixture = FIXTURES / "who_gho" / "datacommons_EMFLIMITELECTRIC.json"
    if not fixture.exists():
        pytest.skip(f"recorded responses not found at {FIXTURES}")
    doc = orjson.loads(fixture.read_bytes())
    con = duckdb.connect()
    rows = rows_of(PageReader("$.value"), con, [str(fixture)])[str(fixture)]
    assert len(rows) == len(doc["value"]) > 0
    columns = [c[0] for c in con.execute("select * from page").description]
    assert {"IndicatorCode", "SpatialDim", "TimeDim", "NumericValue", "Value"} <= set(columns)


@pytest.mark.parametrize("path", ["$.value", "$"])
def test_renamed_fields_read_as_their_columns_together_and_alone(tmp_path: Path, path: str) -> None:
    records = [{"Id": 1, "NumericValue": 2.5, "Other": "x"}, {"Id": 2, "NumericValue": None, "Other": "y"}]
    uris = [write(tmp_path, f"p{i}.json", {"value": records} if path == "$.value" else records) for i in range(2)]
    renames = {"Id": "id", "NumericValue": "numeric_value"}
    con = duckdb.connect()
    together = rows_of(PageReader(path, renames=renames), con, uris)
    assert [c[0] for c in con.execute("select * from page").description] == ["id", "numeric_value", "Other"]
    alone = PageReader(path, renames=renames)
    for uri in uris:
        assert together[uri] == sorted(con.execute(alone.select_sql(con, uri)).fetchall()) == \
            [(1, 2.5, "x"), (2, None, "y")]


@pytest.mark.parametrize("doc, says", [
    ({"records": [], "next_cursor": "c"}, "the page has an empty records array at \\$.records"),
    ({"records": [1, 2]}, "the page has no array of records at \\$.records"),
    ({"data": [{"id": 1}]}, "the page has no array of records at \\$.records"),
])
def test_a_page_without_records_fails_saying_so(tmp_path: Path, doc: Any, says: str) -> None:
    uri = write(tmp_path, "p.json", doc)
    con = duckdb.connect()
    reader = PageReader("$.records")
    reader.prepare(con, [uri])
    with pytest.raises(duckdb.Error, match=says):
        con.execute(reader.select_sql(con, uri)).fetchall()
