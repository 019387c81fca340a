"""Engine fixtures shared by the analytics tests: an in-memory DuckDB and the test PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import ibis
import pytest

from tests.conftest import PG_URL


@pytest.fixture
def duck() -> Iterator[ibis.BaseBackend]:
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


@pytest.fixture
def postgres() -> Iterator[ibis.BaseBackend]:
    """The PostgreSQL test database; skipped without one, failed when PATRON_REQUIRE_POSTGRES is set."""
    if not PG_URL:
        if os.environ.get("PATRON_REQUIRE_POSTGRES"):
            pytest.fail("PATRON_TEST_DATABASE_URL is not set")
        pytest.skip("PATRON_TEST_DATABASE_URL is not set")
    con = ibis.connect(PG_URL)
    yield con
    con.disconnect()
