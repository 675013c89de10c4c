"""The REST tests' stand-in API (one server per test file, its requests and faults reset for each
test), and the loading tests' warehouse (one per engine and test file)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.conftest import fresh_database
from tests.declarative.loading import warehouse_for
from tests.declarative.standin_api import StandInApi, stand_in_api

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse


@pytest.fixture(scope="module")
def shared_api() -> Iterator[StandInApi]:
    with stand_in_api() as api:
        yield api


@pytest.fixture
def api(shared_api: StandInApi) -> StandInApi:
    shared_api.reset()
    return shared_api


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Warehouse]]:
    """One warehouse per engine for the test file; each test's pipeline has a name of its own."""
    folder = tmp_path_factory.mktemp(f"{request.module.__name__.rsplit('.', 1)[-1]}-{request.param}")
    if request.param == "duckdb":
        with warehouse_for(folder, None) as found:
            yield found
        return
    admin = request.getfixturevalue("postgres_admin_dsn")
    with fresh_database(admin) as url, warehouse_for(folder, url) as found:
        yield found
