"""The real `patron` command line, driven through Typer's CliRunner.

Each test gets its own data directory (PATRON_HOME). With
PATRON_TEST_DATABASE_URL set the operational store is that PostgreSQL
database, emptied at the start of each test like the ``runtime`` fixture does.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from typer.main import get_command
from typer.testing import CliRunner, Result

from patron import __version__
from patron.analytics.artefacts import reader_for
from patron.analytics.funnel import Step
from patron.analytics.service import funnel_report
from patron.auth.service import list_operators, resolve_api_key
from patron.cli.main import app
from patron.db.engine import OperationalStore
from patron.runtime import Runtime
from patron.warehouse.store import Warehouse
from tests.conftest import PG_URL, _reset_postgres, make_settings

Patron = Callable[..., Result]

SEGMENT_NAMES = {
    "hibernating",
    "at_risk",
    "cant_lose",
    "about_to_sleep",
    "need_attention",
    "loyal_customers",
    "promising",
    "new_customers",
    "potential_loyalists",
    "champions",
}
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
SAMPLE_ROWS = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2011-11-01 08:26:00,2.55,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,2011-11-01 08:26:00,3.39,17850.0,United Kingdom",
    "536366,22633,HAND WARMER UNION JACK,6,2011-11-02 08:28:00,1.85,17850.0,United Kingdom",
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,2011-11-03 08:34:00,1.69,13047.0,United Kingdom",
    "536368,22960,JAM MAKING SET WITH JARS,abc,2011-11-03 08:34:00,4.25,13047.0,United Kingdom",  # bad: row 5
    "536369,21756,BATH BUILDING BLOCK WORD,3,2011-12-01 09:00:00,5.95,,United Kingdom",  # a guest's order
    "C536370,71053,WHITE METAL LANTERN,-2,2011-12-02 10:00:00,3.39,17850.0,United Kingdom",  # a cancellation
]


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command``, with its path of names."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(get_command(app)))


def _flat(output: str) -> str:
    """Rich wraps long lines; compare text with whitespace collapsed."""
    return " ".join(output.split())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def patron(home: Path) -> Patron:
    """Run `patron ...` against this test's data directory; returns Typer's Result."""
    if PG_URL:
        runtime = Runtime(make_settings(home, database_url=PG_URL))
        try:
            runtime.store.migrate()
            _reset_postgres(runtime)
        finally:
            runtime.close()
    env = {
        "PATRON_HOME": str(home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": PG_URL,
        "PATRON_WAREHOUSE_URL": None,
        "PATRON_MASTER_KEY": None,
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """Seven invoice lines in the online-retail format, gzipped like the real file; row 5 is bad."""
    path = tmp_path / "sample.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *SAMPLE_ROWS]) + "\n").encode()))
    return path


def _json(result: Result) -> Any:
    """stdout must be exactly one JSON document on one line."""
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def _store_url(home: Path) -> str:
    return PG_URL or f"sqlite:///{home / 'patron.db'}"


def _schema(home: Path) -> dict[str, Any]:
    """Tables and columns of both stores, and the migration revision."""
    store = OperationalStore(_store_url(home))
    try:
        found = inspect(store.engine)
        tables = {
            name: [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(name)]
            for name in sorted(found.get_table_names())
        }
        with store.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        store.dispose()
    with Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}", read_only=True) as warehouse:
        warehouse_tables = {name: str(warehouse.table(name).schema()) for name in sorted(warehouse.con.list_tables())}
    return {"operational": tables, "revision": revision, "warehouse": warehouse_tables}


# --- help -------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(("patron", *p)) for p, _ in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert (command.help or "").strip(), f"`patron {' '.join(path)}` has no help text"
    assert f"Usage: {' '.join(('patron', *path))}" in _flat(result.stdout)
    assert _flat(command.help or "").split(". ")[0] in _flat(result.stdout)


def test_the_command_walk_finds_every_known_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS if path}

    assert names >= {
        "init",
        "import",
        "imports",
        "imports list",
        "imports quarantine",
        "build",
        "segments",
        "kpis",
        "cohorts",
        "repurchase",
        "funnels",
        "status",
        "serve",
        "operators create",
        "api-keys create",
        "demo generate",
        "demo up",
        "audit verify",
        "audit export",
        "backup",
        "restore",
        "recs evaluate",
        "recs train",
        "recs activate",
        "recs rollback",
        "points balance",
        "points expire",
        "loyalty jobs run-due",
        "loyalty scheduler",
        "promotions price",
        "promotions codes",
    }


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout.strip() == f"patron {__version__}"


# --- init ---------------------------------------------------------------------------------


def test_init_twice_is_idempotent(patron: Patron, home: Path) -> None:
    first = patron("init")
    key = (home / "master.key").read_bytes()
    schema = _schema(home)

    second = patron("init")

    assert first.exit_code == 0, first.output
    assert "A new master key was written" in _flat(first.stdout)
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    assert second.exit_code == 0, second.output
    assert "Patron is ready" in second.stdout
    assert "master key" not in second.stdout
    assert (home / "master.key").read_bytes() == key
    assert _schema(home) == schema
    assert {"operators", "api_keys", "audit_log", "import_runs"} <= set(schema["operational"])
    assert {"members", "products", "orders", "order_lines", "events"} <= set(schema["warehouse"])


@pytest.mark.skipif(PG_URL is not None, reason="the PostgreSQL test database is always migrated")
def test_commands_before_init_exit_1_asking_for_init(patron: Patron, home: Path) -> None:
    result = patron("status", "--json")

    assert result.exit_code == 1
    assert f"error: there is no data directory at {home}: run `patron init`" in _flat(result.stderr)
    assert result.stdout == ""


def test_an_unreachable_database_exits_1_with_a_clear_message(home: Path) -> None:
    env = {
        "PATRON_HOME": str(home),
        "PATRON_ENV": "development",
        "PATRON_DATABASE_URL": "postgresql://patron@127.0.0.1:1/none",
    }

    result = CliRunner().invoke(app, ["status", "--json"], env=env, catch_exceptions=False)

    assert result.exit_code == 1
    assert "error: cannot open the operational store" in _flat(result.stderr)
    assert result.stdout == ""


# --- import -------------------------------------------------------------------------------


def test_import_reconciles_and_a_rerun_imports_nothing(patron: Patron, sample: Path) -> None:
    patron("init")

    first = _json(patron("import", "online-retail", str(sample), "--json"))
    again = _json(patron("import", "online-retail", str(sample), "--json"))

    counts = ("rows_read", "rows_imported", "rows_quarantined", "rows_duplicate")
    assert [first[k] for k in counts] == [7, 6, 1, 0]
    assert first["rows_read"] == first["rows_imported"] + first["rows_quarantined"] + first["rows_duplicate"]
    assert first["status"] == "completed" and first["source_name"] == "sample.csv.gz"
    assert first["entities"] == {"members": 2, "products": 5, "orders": 5, "order_lines": 6}
    assert [again[k] for k in counts] == [7, 0, 1, 6]
    assert again["id"] == first["id"] + 1


def test_quarantine_shows_the_bad_row_with_row_number_field_and_reason(patron: Patron, sample: Path) -> None:
    patron("init")
    run = _json(patron("import", "online-retail", str(sample), "--json"))

    page = _json(patron("imports", "quarantine", str(run["id"]), "--json"))

    assert page["total"] == 1
    [row] = page["items"]
    assert (row["row_number"], row["field"], row["reason"]) == (5, "Quantity", "not a whole number")
    raw = json.loads(row["raw"])
    assert (raw["InvoiceNo"], raw["Quantity"], raw["CustomerID"]) == ("536368", "abc", "13047.0")


def test_build_segments_kpis_and_status(patron: Patron, sample: Path, home: Path) -> None:
    patron("init")
    run = _json(patron("import", "online-retail", str(sample), "--json"))

    build = _json(patron("build", "--json"))
    segments = _json(patron("segments", "--json"))
    kpis = _json(patron("kpis", "--json", "--granularity", "month"))
    status = _json(patron("status", "--json"))
    runs = _json(patron("imports", "list", "--json"))

    # the last order is 2011-12-02, so as-of is the day after; two customers have ids
    assert (build["status"], build["as_of"], build["members_profiled"]) == ("completed", "2011-12-03", 2)
    assert sum(segments.values()) == 2 and set(segments) <= SEGMENT_NAMES
    assert (kpis["granularity"], kpis["start"], kpis["end"]) == ("month", "2010-12-03", "2011-12-03")
    november, december = kpis["points"]
    assert november["period"] == "2011-11-01T00:00:00"
    assert november["gmv"] == pytest.approx(6 * 2.55 + 6 * 3.39 + 6 * 1.85 + 32 * 1.69)
    assert (november["orders"], november["buyers"], november["new_buyers"]) == (3, 2, 2)
    assert november["repurchase_rate"] == pytest.approx(0.5)  # 17850 ordered twice, 13047 once
    # December: the guest's order counts in GMV and orders, the cancellation nowhere
    assert december["period"] == "2011-12-01T00:00:00"
    assert december["gmv"] == pytest.approx(3 * 5.95)
    assert (december["orders"], december["buyers"]) == (1, 0)
    assert kpis["total"]["orders"] == 4
    assert status["counts"] == {"members": 2, "products": 5, "orders": 5, "order_lines": 6, "events": 0, "inventory": 0}
    assert datetime.fromisoformat(status["last_import"]) == datetime.fromisoformat(run["finished_at"])
    assert datetime.fromisoformat(status["last_build"])
    assert status["build_as_of"] == "2011-12-03"
    assert status["home"] == str(home)
    assert status["warehouse"] == f"duckdb:///{home / 'warehouse.duckdb'}"
    if PG_URL:
        assert status["operational_store"].startswith("postgresql")
    else:
        assert status["operational_store"] == f"sqlite:///{home / 'patron.db'}"
    assert [r["id"] for r in runs] == [run["id"]]


def test_kpis_reject_an_unknown_granularity(patron: Patron, sample: Path) -> None:
    patron("init")
    patron("import", "online-retail", str(sample), "--json")
    patron("build", "--json")

    result = patron("kpis", "--granularity", "fortnight")

    assert result.exit_code == 1
    assert "error (granularity)" in _flat(result.stderr)


# --- errors ---------------------------------------------------------------------------------


def test_an_unknown_import_format_exits_1_with_a_clear_message(patron: Patron, tmp_path: Path) -> None:
    patron("init")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")

    result = patron("import", "nope", str(tmp_path / "x.csv"))
    runs = _json(patron("imports", "list", "--json"))

    assert result.exit_code == 1
    message = _flat(result.stderr)
    assert "error (format): unknown import format 'nope'" in message
    assert "online-retail" in message
    assert runs == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("build", "--as-of", "2011-13-01"), "error (as_of): not a date (YYYY-MM-DD): '2011-13-01'"),
        (("kpis", "--start", "2011-02-30"), "error (start/end): dates are YYYY-MM-DD: day is out of range for month"),
    ],
)
def test_a_bad_date_exits_1_naming_the_option(args: tuple[str, ...], message: str, patron: Patron) -> None:
    patron("init")

    result = patron(*args)

    assert result.exit_code == 1
    assert message in _flat(result.stderr)


def test_operators_create_with_a_short_password_exits_1_naming_the_field(patron: Patron, home: Path) -> None:
    patron("init")

    result = patron("operators", "create", "--username", "olivia", "--role", "analyst", "--password", "short")

    assert result.exit_code == 1
    assert "error (password)" in _flat(result.stderr)
    assert "at least 10 characters" in _flat(result.stderr)
    assert result.stdout == ""
    store = OperationalStore(_store_url(home))
    try:
        assert list_operators(store) == []
    finally:
        store.dispose()


def test_operators_create_makes_an_operator(patron: Patron, home: Path) -> None:
    patron("init")

    result = patron("operators", "create", "--username", "olivia", "--role", "analyst", "--password", "long-enough-1")

    assert result.exit_code == 0, result.output
    store = OperationalStore(_store_url(home))
    try:
        assert [(o.username, o.role) for o in list_operators(store)] == [("olivia", "analyst")]
    finally:
        store.dispose()


def test_api_keys_create_prints_a_working_key_once(patron: Patron, home: Path) -> None:
    patron("init")

    created = _json(
        patron("api-keys", "create", "--name", "x", "--role", "analyst", "--scope", "members:read", "--json")
    )

    assert created["key"].startswith(f"pk_{created['prefix']}_")
    assert (created["name"], created["role"], created["scopes"]) == ("x", "analyst", ["members:read"])
    store = OperationalStore(_store_url(home))
    try:
        principal = resolve_api_key(store, created["key"])
    finally:
        store.dispose()
    assert (principal.kind, principal.role, principal.scopes) == ("api_key", "analyst", frozenset({"members:read"}))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--scope", "members:write"), "error (scopes.0): Input should be 'members:read',"),
        (("--scope", "members:read", "--expires", "next week"), "error (expires): Invalid isoformat string"),
    ],
)
def test_api_keys_create_with_bad_options_exits_1_naming_the_field(
    option: tuple[str, ...], message: str, patron: Patron
) -> None:
    patron("init")

    result = patron("api-keys", "create", "--name", "x", "--role", "analyst", *option, "--json")

    assert result.exit_code == 1
    assert message in _flat(result.stderr)
    assert result.stdout == ""


# --- funnels and repurchase intervals --------------------------------------------------------


@pytest.fixture
def demo_shop(patron: Patron) -> Patron:
    """A small demo shop with member events, imported and built."""
    patron("init")
    _json(patron("demo", "generate", "--members", "300", "--seed", "3", "--json"))
    _json(patron("build", "--json"))
    return patron


@pytest.mark.slow
def test_funnels_json_equals_the_service_and_the_table_shows_each_group(demo_shop: Patron, home: Path) -> None:
    args = ("funnels", "--steps", "view,cart,purchase", "--window", "1d", "--order", "strict", "--breakdown", "channel")
    report = _json(demo_shop(*args, "--json"))
    table = demo_shop(*args)

    steps = [Step("view"), Step("cart"), Step("purchase")]
    expected = funnel_report(reader_for(home / "artefacts"), steps, timedelta(hours=24), "strict", (), "channel")
    assert report == expected.model_dump(mode="json")
    assert (report["window_hours"], report["order"], report["breakdown"]) == (24.0, "strict", "channel")
    members = [step["members"] for step in report["overall"]]
    assert members[0] > members[1] > members[2] > 0
    for k, whole in enumerate(members):
        assert sum(group["steps"][k]["members"] for group in report["groups"]) == whole
    assert table.exit_code == 0, table.output
    text = _flat(table.stdout)
    assert "Funnel (strict order, window 24 h)" in text
    assert all(group["value"] in text for group in report["groups"])
    assert f"{members[0]:,}" in text


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--window", "3 parsecs"), "error (window): a window is a number with m, h, d or w"),
        (("--steps", "view:colour=red"), "error (steps): step 1 ('view:colour=red'): filters are"),
        (("--exclude", "fav:category="), "error (exclude): step 1 ('fav:category='): category needs a value"),
        (("--order", "sideways"), "error (order): order must be strict or any"),
        (("--breakdown", "gender"), "error (breakdown): breakdown must be one of none, channel"),
        (("--start", "2011-02-30"), "error (start): not a date (YYYY-MM-DD): '2011-02-30'"),
    ],
)
def test_funnels_with_bad_options_exit_1_naming_the_option(
    option: tuple[str, ...], message: str, patron: Patron
) -> None:
    patron("init")

    result = patron("funnels", *option, "--json")

    assert result.exit_code == 1
    assert message in _flat(result.stderr)
    assert result.stdout == ""


def test_repurchase_intervals(patron: Patron, sample: Path) -> None:
    patron("init")
    patron("import", "online-retail", str(sample), "--json")
    patron("build", "--json")

    report = _json(patron("repurchase", "--json"))
    table = patron("repurchase")

    # 17850 ordered on 1 and 2 November (the December cancellation never counts); 13047 once
    assert report["intervals"] == 1
    assert report["mean_days"] == pytest.approx(1 + 2 / 1440)
    [filled] = [b for b in report["bins"] if b["intervals"]]
    assert (filled["lower_days"], filled["upper_days"], filled["share"]) == (1.0, 7.0, 1.0)
    assert table.exit_code == 0, table.output
    assert "1 repurchase intervals" in _flat(table.stdout)
