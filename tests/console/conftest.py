"""Console fixtures: built data directories, the real app on a local port, Chromium.

Two data directories are prepared once per session: the shared online-retail
file (orders only), built with its models (churn, clusters, CLV), and a small
demo shop whose build also holds member events (for the funnels page) but no
models. Tests that change rule tags or alert rules get a copy of the retail
build with an operational store of their own (``retail_copy``); the forecasts
page reads a copy of the demo shop with forecasts and low stock
(``forecast_runtime``). Browser tests
drive the system Chromium (/usr/bin/chromium) through Playwright's sync API;
they skip when it is missing, except in CI where they fail (the ``browser``
fixture lives in tests/conftest.py, one for the session).
Every page a browser test visits is saved to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import ibis
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page

from patron.analytics.artefacts import reader_for
from patron.analytics.build import build_profiles
from patron.api.app import create_app
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.console.assets import ensure_vendor_assets, vendor_available
from patron.demo import generate_shop
from patron.forecast import forecast_step, write_forecast_artefacts
from patron.ingest.service import import_batch, run_import
from patron.runtime import Runtime
from tests.conftest import make_settings, missing, shared_data

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "console-test-pass-1"
OPERATORS = {"admin": "admin", "analyst": "analyst"}
ROLE_OPERATORS = {"admin": "admin", "analyst": "analyst", "marketer": "marketer", "support": "support"}
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def built_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A data directory with the online-retail file imported, profiles built and two operators."""
    source = shared_data("online_retail/online_retail.csv.gz")
    rt = Runtime(make_settings(tmp_path_factory.mktemp("console") / "home"))  # SQLite: not reset between tests
    rt.settings.home.mkdir(parents=True)
    rt.store.migrate()
    run_import(rt, "online-retail", source)
    build_profiles(rt)
    for username, role in OPERATORS.items():
        create_operator(rt.store, OperatorCreate(username=username, password=PASSWORD, role=role))
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def vendor_assets() -> None:
    """The ECharts bundle in static/vendor/, copied from node_modules if needed."""
    if vendor_available():
        return
    try:
        ensure_vendor_assets(ROOT)
    except FileNotFoundError as exc:
        missing(f"ECharts is not installed ({exc}); run `npm ci` in {ROOT}")


@pytest.fixture(scope="session")
def events_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A demo shop of 600 members with view, fav, cart and purchase events, built, with the same operators."""
    rt = Runtime(make_settings(tmp_path_factory.mktemp("console-events") / "home"))
    rt.settings.home.mkdir(parents=True)
    rt.store.migrate()
    import_batch(rt, "demo", "demo-600-7", lambda: generate_shop(600, 7))
    build_profiles(rt, with_models=False)
    for username, role in OPERATORS.items():
        create_operator(rt.store, OperatorCreate(username=username, password=PASSWORD, role=role))
    yield rt
    rt.close()


def copy_of_build(source: Runtime, home: Path) -> Runtime:
    """A data directory serving a copy of ``source``'s builds, with a fresh operational store.

    Its operators are named after their roles (admin, analyst, marketer, support).
    """
    rt = Runtime(make_settings(home))
    home.mkdir(parents=True)
    rt.store.migrate()
    shutil.copytree(source.settings.artefact_dir, rt.settings.artefact_dir)
    for username, role in ROLE_OPERATORS.items():
        create_operator(rt.store, OperatorCreate(username=username, password=PASSWORD, role=role))
    return rt


def _stock_top_sellers(runtime: Runtime, as_of: datetime, products: int = 3) -> None:
    """Record nearly empty stock for the best-selling products, so that the forecast warns about them."""
    with runtime.warehouse() as warehouse:
        lines = warehouse.table("order_lines")
        top = lines.group_by("product_key").aggregate(n=lines.count()).order_by([ibis.desc("n"), "product_key"])
        keys = top.limit(products).product_key.to_pyarrow().to_pylist()
        for key in keys:
            warehouse.con.con.execute(
                "INSERT INTO inventory (product_key, updated_at, on_hand, lead_time_days, safety_stock) "
                "VALUES (?, ?, 1, 14, 5)",
                [key, as_of - timedelta(hours=1)],
            )


@pytest.fixture(scope="session")
def forecast_runtime(events_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The demo shop's build with demand forecasts and low-stock warnings for its three best sellers.

    The warehouse is copied too: the forecast step reads it, and the stock counts are added to the copy.
    """
    home = tmp_path_factory.mktemp("console-forecasts") / "home"
    rt = copy_of_build(events_runtime, home)
    shutil.copyfile(events_runtime.settings.home / "warehouse.duckdb", home / "warehouse.duckdb")
    reader = reader_for(rt.settings.artefact_dir)
    as_of = datetime.combine(date.fromisoformat(reader.manifest["as_of"]), datetime.min.time())
    _stock_top_sellers(rt, as_of)
    with rt.warehouse() as warehouse:
        result = forecast_step(warehouse, as_of)
    write_forecast_artefacts(result, Path(reader.manifest["path"]))
    yield rt
    rt.close()


@pytest.fixture
def retail_copy(built_runtime: Runtime, tmp_path: Path) -> Iterator[Runtime]:
    """The online-retail build in a data directory of its own: tags and alert rules added here stay here."""
    rt = copy_of_build(built_runtime, tmp_path / "home")
    yield rt
    rt.close()


@contextmanager
def _serve(runtime: Runtime) -> Iterator[str]:
    """The real app served by uvicorn on 127.0.0.1 in a background thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(runtime), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the console server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="session")
def live_server(built_runtime: Runtime, vendor_assets: None) -> Iterator[str]:
    """The console over the online-retail build."""
    with _serve(built_runtime) as url:
        yield url


@pytest.fixture(scope="session")
def events_server(events_runtime: Runtime, vendor_assets: None) -> Iterator[str]:
    """The console over the demo shop with member events."""
    with _serve(events_runtime) as url:
        yield url


@pytest.fixture
def retail_copy_server(retail_copy: Runtime, vendor_assets: None) -> Iterator[str]:
    """The console over a copy of the online-retail build (for journeys that add tags or alert rules)."""
    with _serve(retail_copy) as url:
        yield url


@pytest.fixture(scope="session")
def forecast_server(forecast_runtime: Runtime, vendor_assets: None) -> Iterator[str]:
    """The console over the demo shop with forecasts and stock warnings."""
    with _serve(forecast_runtime) as url:
        yield url


class Shots:
    """Saves numbered screenshots named after the test."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, page: Page, label: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


@pytest.fixture
def page_factory(
    browser: Browser, live_server: str, shots: Shots, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    """Open pages in fresh browser contexts (own cookies); screenshot them on failure."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_page(locale: str = "en-US", width: int = 1440, height: int = 900, base_url: str | None = None) -> Page:
        viewport = {"width": width, "height": height}
        context = browser.new_context(base_url=base_url or live_server, locale=locale, viewport=viewport)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield open_page
    if _failed(request):
        for page in pages:
            shots.take(page, "failure")
    for context in contexts:
        context.close()
