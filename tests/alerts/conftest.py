"""Alert fixtures: a small built shop whose daily orders are known, stores per test, a local webhook receiver.

The shop is planned in plain Python (``PLAN``): tests compute the KPIs they
expect from the plan itself, never from the code under test. It is imported
and built once per module into a data directory of its own; each test gets a
fresh operational store (SQLite, or the PostgreSQL test database when
PATRON_TEST_DATABASE_URL is set) next to that build's artefacts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from patron.analytics.build import build_profiles
from patron.ingest.contract import QUARANTINE_SCHEMA, ParsedBatch
from patron.ingest.service import import_batch
from patron.runtime import Runtime
from tests.conftest import PG_URL, _reset_postgres, make_settings

START = date(2024, 1, 1)  # a Monday
DAYS = 91  # to 2024-03-31, a Sunday
LAST = START + timedelta(days=DAYS - 1)
ZERO_DAY = date(2024, 3, 27)  # a Wednesday without a single order
SPIKE_DAY = LAST  # three times the usual Sunday orders
PER_WEEKDAY = (5, 4, 4, 5, 6, 8, 7)  # completed orders, Monday first


@dataclass(frozen=True)
class PlannedOrder:
    key: str
    member: str | None  # None: a guest checkout
    at: datetime
    amount: float
    cancelled: bool


def _orders_on(day: date, serial: int) -> list[PlannedOrder]:
    i = (day - START).days
    count = PER_WEEKDAY[day.weekday()] + (i * 7) % 3  # 0, 1 or 2 extra, in a fixed cycle
    if day == ZERO_DAY:
        count = 0
    if day == SPIKE_DAY:
        count *= 3
    planned = []
    for k in range(count + (1 if count and i % 4 == 0 else 0)):  # every fourth day one more, cancelled
        n = serial + k
        planned.append(
            PlannedOrder(
                key=f"t:O{n:06d}",
                member=None if n % 10 == 0 else str(n % 37 + 1),
                at=datetime.combine(day, datetime.min.time()) + timedelta(hours=9, minutes=7 * k),
                amount=100.0 + 10.0 * (n % 5),
                cancelled=k == count,
            )
        )
    return planned


def _plan() -> list[PlannedOrder]:
    orders: list[PlannedOrder] = []
    for i in range(DAYS):
        orders.extend(_orders_on(START + timedelta(days=i), len(orders)))
    return orders


PLAN = _plan()


def planned_daily(metric: str) -> dict[date, float]:
    """``gmv`` or ``orders`` per day from the plan: completed orders only, days without orders as 0."""
    daily = {START + timedelta(days=i): 0.0 for i in range(DAYS)}
    for order in PLAN:
        if not order.cancelled:
            daily[order.at.date()] += order.amount if metric == "gmv" else 1.0
    return daily


def _batch() -> ParsedBatch:
    orders = pl.DataFrame(
        {
            "order_key": [o.key for o in PLAN],
            "member_source_id": [o.member for o in PLAN],
            "ordered_at": [o.at for o in PLAN],
            "status": ["cancelled" if o.cancelled else "completed" for o in PLAN],
            "channel": ["web"] * len(PLAN),
            "amount": [o.amount for o in PLAN],
            "discount": [0.0] * len(PLAN),
        },
        schema_overrides={"ordered_at": pl.Datetime("us")},
    )
    lines = pl.DataFrame(
        {
            "order_key": [o.key for o in PLAN],
            "line_no": pl.Series([1] * len(PLAN), dtype=pl.Int32),
            "product_key": ["t:P1"] * len(PLAN),
            "quantity": [1] * len(PLAN),
            "unit_price": [o.amount for o in PLAN],
            "amount": [o.amount for o in PLAN],
            "discount": [0.0] * len(PLAN),
            "returned": [False] * len(PLAN),
        }
    )
    members = pl.DataFrame({"source_id": sorted({o.member for o in PLAN if o.member}, key=int)})
    return ParsedBatch(
        source="test",
        rows_read=lines.height,
        primary="order_lines",
        quarantine=pl.DataFrame(schema=QUARANTINE_SCHEMA),
        members=members,
        orders=orders,
        order_lines=lines,
    )


@pytest.fixture(scope="module")
def shop_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the planned shop, imported and built (its own SQLite store)."""
    home = tmp_path_factory.mktemp("alerts") / "home"
    home.mkdir()
    rt = Runtime(make_settings(home))
    try:
        rt.store.migrate()
        import_batch(rt, "test", "planned shop", _batch)
        build_profiles(rt, with_models=False)
    finally:
        rt.close()
    return home


def store_url(tmp_path: Path) -> str:
    return PG_URL or f"sqlite:///{tmp_path / 'alerts.db'}"


@pytest.fixture
def shop(shop_home: Path, tmp_path: Path) -> Iterator[Runtime]:
    """The built shop's artefacts with a fresh, migrated operational store."""
    rt = Runtime(make_settings(shop_home, database_url=store_url(tmp_path)))
    rt.store.migrate()
    if PG_URL:
        _reset_postgres(rt)
    yield rt
    rt.close()


# --- a real HTTP receiver -------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers POSTs with the scripted statuses in turn (the last one repeats), optionally after a delay."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    release: threading.Event | None = None  # when set: each answer waits until the test sets this event
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def next_status(self) -> int:
        index = min(len(self.requests) - 1, len(self.statuses) - 1)
        return self.statuses[index]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
            if receiver.delay:
                time.sleep(receiver.delay)
            if receiver.release is not None:
                receiver.release.wait(60)
            status = receiver.next_status()
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (timeout tests)
                return

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 and a free port, in a thread; set ``statuses``/``delay`` before use."""
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/patron"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
