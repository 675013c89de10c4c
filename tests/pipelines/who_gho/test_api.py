"""The GHO stand-in over real HTTP: OData paging, the country dimension, unknown indicators,
revisions, faults, and the real service's field set."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from lakebox.pipelines.orders.api import FaultPlan, RunningServer, serve_in_thread
from lakebox.pipelines.who_gho.api import create_app, main, serve
from lakebox.pipelines.who_gho.generator import PUBLISHED, generate_gho
from tests.pipelines.who_gho.conftest import FIXTURES

LE = "WHOSIS_000001"
COUNTRIES, YEARS, SEED = 30, 12, 5


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve(countries=COUNTRIES, years=YEARS, seed=SEED) as running:
        yield running


def get(url: str, **params: Any) -> httpx.Response:
    return httpx.get(url, params=params, timeout=30)


def fetch_all(url: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """Every record of an indicator: next links when sent, else the next $skip until @odata.count."""
    records: list[dict[str, Any]] = []
    pages = 0
    request: str | dict[str, str] | None = params
    while request is not None:
        response = httpx.get(request, timeout=30) if isinstance(request, str) else get(url, **request)
        response.raise_for_status()
        doc = response.json()
        records += doc["value"]
        pages += 1
        if doc.get("@odata.nextLink"):
            request = doc["@odata.nextLink"]
        elif isinstance(request, dict) and "@odata.count" in doc and len(records) < doc["@odata.count"]:
            request = {**request, "$skip": str(len(records))}
        else:
            request = None
    return records, pages


def test_top_skip_and_count_page_through_the_whole_indicator(server: RunningServer) -> None:
    whole = get(f"{server.url}/{LE}").json()
    assert "@odata.nextLink" not in whole and "@odata.count" not in whole  # like the real service
    assert whole["@odata.context"] == f"https://ghoapi.azureedge.net/api/$metadata#{LE}"  # as the real service
    first = get(f"{server.url}/{LE}", **{"$top": "100", "$skip": "0", "$count": "true"}).json()
    assert first["@odata.count"] == len(whole["value"]) and len(first["value"]) == 100
    assert list(first) == ["@odata.context", "@odata.count", "value"]
    records, pages = fetch_all(f"{server.url}/{LE}", {"$top": "100", "$skip": "0", "$count": "true"})
    assert records == whole["value"]
    assert pages == -(-len(records) // 100)
    assert [r["Id"] for r in records] == sorted(r["Id"] for r in records)


def test_server_driven_paging_sends_next_links_to_the_rest() -> None:
    with serve(countries=COUNTRIES, years=YEARS, seed=SEED, page_size=250) as capped:
        whole = generate_gho(COUNTRIES, YEARS, SEED).observations[LE]
        first = get(f"{capped.url}/{LE}").json()
        assert len(first["value"]) == 250 and first["@odata.nextLink"].startswith(f"{capped.url}/{LE}?")
        records, pages = fetch_all(f"{capped.url}/{LE}", {})
        assert records == whole and pages == -(-len(whole) // 250)
        # a client's $top smaller than the server's cap: no link beyond what it asked for
        asked = get(f"{capped.url}/{LE}", **{"$top": "300"}).json()
        assert len(asked["value"]) == 250 and "%24top=50" in asked["@odata.nextLink"]
        rest = httpx.get(asked["@odata.nextLink"]).json()
        assert len(rest["value"]) == 50 and "@odata.nextLink" not in rest


def test_unknown_indicator_is_a_404_with_odatas_error_body(server: RunningServer) -> None:
    response = get(f"{server.url}/WHOSIS_999999")
    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and "No HTTP resource was found" in error["message"]
    listed = get(f"{server.url}/Indicator").json()["value"]
    assert [i["IndicatorCode"] for i in listed] == ["WHOSIS_000001", "WHOSIS_000002"]


@pytest.mark.parametrize("params", [{"$top": "-1"}, {"$skip": "x"}, {"$filter": "Value eq 3"},
                                    {"$filter": "TimeDim gt soon"}])
def test_bad_query_options_are_400s_naming_the_option(server: RunningServer, params: dict[str, str]) -> None:
    response = get(f"{server.url}/{LE}", **params)
    assert response.status_code == 400 and response.json()["error"]["message"]


def test_country_dimension_has_names_and_who_regions(server: RunningServer) -> None:
    value = get(f"{server.url}/DIMENSION/COUNTRY/DimensionValues").json()["value"]
    assert len(value) == COUNTRIES and len({c["Code"] for c in value}) == COUNTRIES
    assert {c["ParentCode"] for c in value} <= {"AFR", "AMR", "SEAR", "EUR", "EMR", "WPR"}
    assert all(re.fullmatch(r"[A-Z]{3}", c["Code"]) and c["Title"] for c in value)


def test_records_carry_the_real_services_field_set(server: RunningServer) -> None:
    indicator, dimension = FIXTURES / "datacommons_EMFLIMITELECTRIC.json", FIXTURES / "hdx_country_dimensionvalues.json"
    if not indicator.exists() or not dimension.exists():
        pytest.skip(f"recorded GHO responses not found in {FIXTURES}")
    recorded = orjson.loads(indicator.read_bytes())
    served = get(f"{server.url}/{LE}", **{"$top": "5"}).json()
    assert set(served) - {"@odata.count"} == set(recorded)
    recorded_keys, served_keys = set(recorded["value"][0]), set(served["value"][0])
    assert served_keys - recorded_keys == {"ParentLocationCode", "ParentLocation"}  # newer records add these
    assert recorded_keys <= served_keys
    countries = get(f"{server.url}/DIMENSION/COUNTRY/DimensionValues").json()["value"]
    assert set(countries[0]) == set(orjson.loads(dimension.read_bytes())["value"][0])


def test_values_are_realistic_life_expectancies() -> None:
    gho = generate_gho(countries=190, years=20, seed=3)
    le = {(r["SpatialDim"], r["TimeDim"], r["Dim1"]): r for r in gho.observations[LE]
          if r["SpatialDimType"] == "COUNTRY"}
    hale = {(r["SpatialDim"], r["TimeDim"], r["Dim1"]): r for r in gho.observations["WHOSIS_000002"]
            if r["SpatialDimType"] == "COUNTRY"}
    published = [r for r in le.values() if r["NumericValue"] is not None]
    assert all(20 < r["NumericValue"] < 100 and r["Low"] < r["NumericValue"] < r["High"] for r in published)
    assert all(re.fullmatch(r"\d+\.\d\d \[\d+\.\d\d-\d+\.\d\d\]", r["Value"]) for r in published)
    missing = [r for r in le.values() if r["NumericValue"] is None]
    assert missing and all(r["Comments"] for r in missing)  # null only with a reason
    pairs = [(le[(c, y, "SEX_FMLE")]["NumericValue"], le[(c, y, "SEX_MLE")]["NumericValue"])
             for c, y, s in le if s == "SEX_BTSX"]
    gaps = [f - m for f, m in pairs if f is not None and m is not None]
    assert min(gaps) > 1 and 3 < sum(gaps) / len(gaps) < 7.5  # women outlive men by a few years
    assert all(hale[k]["NumericValue"] < r["NumericValue"] for k, r in le.items()
               if r["NumericValue"] is not None and hale[k]["NumericValue"] is not None)
    years: dict[str, list[int]] = {}
    for c, y, s in le:
        if s == "SEX_BTSX":
            years.setdefault(c, []).append(y)
    steps = {b - a for ys in years.values() for a, b in zip(sorted(ys), sorted(ys)[1:], strict=False)}
    assert {1, 5} <= steps  # yearly and five-yearly reporters
    assert {r["SpatialDimType"] for r in gho.observations[LE]} == {"COUNTRY", "REGION", "GLOBAL"}


def test_same_seed_same_data_and_a_revision_republishes_some_values(server: RunningServer) -> None:
    base = generate_gho(COUNTRIES, YEARS, SEED)
    assert generate_gho(COUNTRIES, YEARS, SEED) == base
    revised = generate_gho(COUNTRIES, YEARS, SEED, revision=1)
    old, new = base.observations[LE], revised.observations[LE]
    assert [r["Id"] for r in old] == [r["Id"] for r in new]
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    countries = [(a, b) for a, b in changed if a["SpatialDimType"] == "COUNTRY"]
    assert {(a["SpatialDim"]) for a, _ in countries} and all(a["TimeDim"] > 2021 - 5 for a, _ in countries)
    assert 0 < len(countries) / len(old) < 0.1  # a few countries' latest years, and the regional means over them
    assert all(b["NumericValue"] != a["NumericValue"] and b["Date"] > a["Date"] for a, b in changed)
    with serve_in_thread(create_app(data=revised)) as second:
        filtered = get(f"{second.url}/{LE}", **{"$filter": f"Date gt {PUBLISHED.isoformat()}"}).json()["value"]
    assert filtered == [b for _, b in changed]
    assert get(f"{server.url}/{LE}", **{"$filter": f"Date gt {PUBLISHED.isoformat()}"}).json()["value"] == []


def test_faults_are_the_transient_and_data_faults_a_client_meets() -> None:
    plan = FaultPlan.parse(["500:1", "429:1:retry_after=3", "malformed"])
    with serve_in_thread(create_app(countries=5, years=3, seed=1, faults=plan)) as faulty:
        assert get(f"{faulty.url}/DIMENSION/COUNTRY/DimensionValues").status_code == 200  # faults hit indicators
        assert get(f"{faulty.url}/{LE}").status_code == 500
        limited = get(f"{faulty.url}/{LE}")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(get(f"{faulty.url}/{LE}").content)
        assert get(f"{faulty.url}/{LE}").json()["value"]  # recovered
        httpx.post(f"{faulty.url}/_faults", json={"kind": "unknown_status"}).raise_for_status()
        spoiled = get(f"{faulty.url}/{LE}").json()["value"]
        assert spoiled[0]["Dim1"] == "SEX_UNK" and httpx.get(f"{faulty.url}/_faults").json() == {"faults": []}


def test_cli_refuses_impossible_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--countries", "500"]) == 2
    assert "--countries must be from 1 to 194" in capsys.readouterr().err


def test_the_command_serves_until_stopped() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "lakebox.pipelines.who_gho.api", "--port", "0", "--countries", "4", "--years", "3",
         "--page-size", "10"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = process.stderr.readline() if process.stderr else ""
        url = re.search(r"on (http://\S+)", banner)
        assert url, banner
        doc = get(f"{url.group(1)}/{LE}").json()
        assert len(doc["value"]) == 10 and doc["@odata.nextLink"]
    finally:
        process.terminate()
        process.communicate(timeout=10)  # waits, and closes the pipe
