"""Shared fixtures: a fresh data directory and stores per test.

The operational store is SQLite in the test's data directory unless
PATRON_TEST_DATABASE_URL names a PostgreSQL database; then every test runs
against that server and starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy import text

from patron.db.base import Base
from patron.runtime import Runtime
from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

PG_URL = os.environ.get("PATRON_TEST_DATABASE_URL")

# Wall-clock limits that a busy shared machine can break without a fault in the code: Hypothesis's 200 ms per
# example, and Playwright's 5 s per expectation (browser tests wait up to 15 s for what should show).
settings.register_profile("patron", deadline=None)
settings.load_profile("patron")
expect.set_options(timeout=15_000)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Published online-retail RFM segment counts (../shared/data/README.md).
REFERENCE_SEGMENTS = {
    "hibernating": 1071,
    "at_risk": 593,
    "cant_lose": 63,
    "about_to_sleep": 352,
    "need_attention": 187,
    "loyal_customers": 819,
    "promising": 95,
    "new_customers": 42,
    "potential_loyalists": 484,
    "champions": 633,
}


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing(message: str) -> None:
    """Fail in CI, skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """System Chromium via Playwright, one for the whole session (never downloaded: no ``playwright install``).

    Defined here, once: Playwright's sync API runs its event loop on the main thread, so a second
    instance (a copy of this fixture in another module) could not start while the first is open.
    """
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: install Chromium to run the browser tests")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def shared_data(relative: str) -> Path:
    """A file of ../shared/data; missing data fails in CI and skips elsewhere."""
    path = DATA / relative
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data set missing: {path}")
        pytest.skip(f"shared data set missing: {relative}")
    return path


def make_settings(home: Path, *, database_url: str | None = None, warehouse_url: str | None = None) -> Settings:
    return Settings(
        home=home,
        env="development",
        master_key=PLACEHOLDER_MASTER_KEY,
        database_url=database_url,
        warehouse_url=warehouse_url,
        # the route walk and the browser journeys sign in hundreds of times from one address;
        # tests/security sets the limits it checks
        rate_limit_login_per_minute=1_000_000,
    )


def _reset_postgres(runtime: Runtime) -> None:
    engine = runtime.store.engine
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A migrated operational store and an empty embedded warehouse."""
    rt = Runtime(make_settings(tmp_path / "home", database_url=PG_URL))
    rt.settings.home.mkdir(parents=True)
    rt.store.migrate()
    if PG_URL:
        _reset_postgres(rt)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Online-retail imported and built once per session (read-only for tests).

    Uses an embedded operational store of its own, so that the per-test
    truncation of a PostgreSQL test database cannot touch it.
    """
    from patron.analytics.build import build_profiles
    from patron.ingest.service import run_import

    path = shared_data("online_retail/online_retail.csv.gz")
    rt = Runtime(make_settings(tmp_path_factory.mktemp("retail")))
    rt.store.migrate()
    run_import(rt, "online-retail", path)
    build_profiles(rt)
    yield rt
    rt.close()


# Modules whose tests touch no store (models, metrics, pricing): they run in the embedded pass only, since
# the PostgreSQL pass (PATRON_TEST_DATABASE_URL set) would repeat exactly the same computation.
STORE_FREE_MODULES = {
    "tests.clv.test_bgnbd",
    "tests.clv.test_gamma_gamma",
    "tests.clv.test_lifetimes_crosscheck",
    "tests.clv.test_pareto_nbd",
    "tests.clv.test_summary",
    "tests.promotions.test_pricing",
    "tests.promotions.test_pricing_properties",
    "tests.recs.test_assignment",
    "tests.recs.test_assoc",
    "tests.recs.test_buy_again",
    "tests.recs.test_comparison",
    "tests.recs.test_content",
    "tests.recs.test_contract",
    "tests.recs.test_evaluation_cli",
    "tests.recs.test_evaluation_metrics",
    "tests.recs.test_evaluation_protocols",
    "tests.recs.test_fallback",
    "tests.recs.test_hybrid",
    "tests.recs.test_models_movielens",
    "tests.recs.test_published_protocols",
    "tests.recs.test_rules",
    "tests.recs.test_session",
    "tests.security.test_schemathesis",  # its own copy of the embedded online-retail store
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not PG_URL:
        return
    once = pytest.mark.skip(reason="touches no store: runs in the embedded pass")
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in STORE_FREE_MODULES:
            item.add_marker(once)
