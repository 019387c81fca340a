"""Rule tags: parsing, canonical form, errors with positions, and compilation to Ibis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from patron.analytics.artefacts import reader_for
from patron.errors import ValidationError
from patron.runtime import Runtime
from patron.tags.errors import RuleSyntaxError
from patron.tags.rules import (
    DEFAULT_FIELDS,
    MAX_DEPTH,
    And,
    Compare,
    Field,
    FieldType,
    Not,
    Or,
    parse_rule,
    rule_filter,
    validate_rule,
)

AS_OF = date(2024, 3, 11)
_COLUMNS = ("member_key", "segment", "monetary", "frequency", "recency_days", "region", "last_order_at", "signup_at")
_ROWS = [
    ("m1", "champions", 1500.0, 12, 5, "North", datetime(2024, 3, 6, 10), datetime(2021, 6, 1)),
    ("m2", "at_risk", 250.5, 3, 200, 'North "East"', datetime(2023, 8, 24, 23, 59), datetime(2022, 1, 15)),
    ("m3", None, 0.0, 1, 400, None, datetime(2023, 2, 5), None),
    ("m4", "new_customers", 80.0, 1, 2, "South", datetime(2024, 3, 9), datetime(2024, 3, 1)),
    ("m5", "champions", 900.0, 8, 20, "it's", datetime(2024, 2, 20, 8, 30), datetime(2020, 12, 31)),
]
ROWS = [dict(zip(_COLUMNS, row, strict=True)) for row in _ROWS]


@pytest.fixture(scope="module")
def members() -> Any:
    schema = {
        "member_key": "string", "segment": "string", "monetary": "float64", "frequency": "int64",
        "recency_days": "int64", "region": "string", "last_order_at": "timestamp", "signup_at": "timestamp",
    }  # fmt: skip
    return ibis.memtable({c: [r[c] for r in ROWS] for c in _COLUMNS}, schema=schema)


_DTYPES = {"number": "float64", "string": "string", "date": "timestamp", "boolean": "boolean"}
PROFILES = ibis.table({name: _DTYPES[kind] for name, kind in DEFAULT_FIELDS.items()}, name="profiles")


def compiles(rule: str) -> None:
    """The rule compiles to warehouse SQL over the full profiles schema."""
    ibis.to_sql(PROFILES.filter(rule_filter(parse_rule(rule), PROFILES)), dialect="duckdb")


def selected(rule: str, table: Any) -> list[str]:
    chosen = table.filter(rule_filter(parse_rule(rule), table, as_of=AS_OF))
    return sorted(chosen.member_key.to_pyarrow().to_pylist())


def known(field: str, test: Callable[[Any], bool]) -> Callable[[dict[str, Any]], bool]:
    """A plain predicate on one row: a missing value never matches."""

    def check(row: dict[str, Any]) -> bool:
        value = row[field]
        if isinstance(value, datetime):
            value = value.date()
        return value is not None and test(value)

    return check


def days(field: str, test: Callable[[int], bool]) -> Callable[[dict[str, Any]], bool]:
    return known(field, lambda d: test((AS_OF - d).days))


VALID: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ('segment = "champions"', known("segment", lambda s: s == "champions")),
    ("segment = 'champions' and monetary > 1000", lambda r: r["segment"] == "champions" and r["monetary"] > 1000),
    ('segment != "champions"', known("segment", lambda s: s != "champions")),
    ('not segment = "champions"', lambda r: r["segment"] != "champions"),  # a missing segment is selected
    ("monetary >= 250.5", known("monetary", lambda m: m >= 250.5)),
    ("monetary < 80", known("monetary", lambda m: m < 80)),
    ("monetary <= -0.5 or frequency = 1", lambda r: r["frequency"] == 1),
    ("frequency between 3 and 8", known("frequency", lambda f: 3 <= f <= 8)),
    ('segment in ("at_risk", "new_customers")', known("segment", lambda s: s in ("at_risk", "new_customers"))),
    ('segment not in ("at_risk", "new_customers")', known("segment", lambda s: s not in ("at_risk", "new_customers"))),
    ('region = "North \\"East\\""', known("region", lambda s: s == 'North "East"')),
    ("region = 'it\\'s'", known("region", lambda s: s == "it's")),
    ('last_order_at >= date("2024-03-06")', known("last_order_at", lambda d: d >= date(2024, 3, 6))),
    ('last_order_at = date("2023-08-24")', known("last_order_at", lambda d: d == date(2023, 8, 24))),
    (
        'signup_at between date("2021-01-01") and date("2022-12-31")',
        known("signup_at", lambda d: date(2021, 1, 1) <= d <= date(2022, 12, 31)),
    ),
    ("days_since(last_order_at) > 90", days("last_order_at", lambda n: n > 90)),
    ("days_since(signup_at) <= 365", days("signup_at", lambda n: n <= 365)),
    (
        'frequency > 1 and (segment = "champions" or recency_days > 100)',
        lambda r: r["frequency"] > 1 and (r["segment"] == "champions" or r["recency_days"] > 100),
    ),
    (
        'NOT (frequency > 1 OR region = "South") And monetary >= 0',
        lambda r: not (r["frequency"] > 1 or r["region"] == "South") and r["monetary"] >= 0,
    ),
    (
        'recency_days < 10 or segment = "at_risk" and monetary > 100',
        lambda r: r["recency_days"] < 10 or (r["segment"] == "at_risk" and r["monetary"] > 100),
    ),
    ("not not frequency = 1", known("frequency", lambda f: f == 1)),
]


@pytest.mark.parametrize(("rule", "predicate"), VALID, ids=[rule for rule, _ in VALID])
def test_a_valid_rule_selects_the_members_a_plain_predicate_selects(
    members: Any, rule: str, predicate: Callable[[dict[str, Any]], bool]
) -> None:
    expected = sorted(str(row["member_key"]) for row in ROWS if predicate(row))
    assert selected(rule, members) == expected
    assert validate_rule(rule) == []


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    a, b, c = (Compare(Field("frequency"), "=", Decimal(n)) for n in "123")
    assert parse_rule("frequency = 1 or frequency = 2 and frequency = 3") == Or((a, And((b, c))))
    assert parse_rule("not frequency = 1 and frequency = 2") == And((Not(a), b))
    assert (
        str(parse_rule("(frequency=1 or frequency=2)and frequency=3"))
        == "(frequency = 1 or frequency = 2) and frequency = 3"
    )


ERRORS = [
    ("", 0, "the rule is empty at position 0"),
    ("   ", 0, "the rule is empty at position 0"),
    ("recency_days >=", 15, "expected a value after '>=' at position 15"),
    ("recency_days >= and", 16, "expected a value after '>=' at position 16"),
    ("segment > 3", 8, "'>' does not apply to string field segment at position 8; use = or !="),
    ('monetary = "x"', 11, "expected a number to compare with monetary, found a string at position 11"),
    (
        'signup_at > "2024-01-01"',
        12,
        'expected a date to compare with signup_at, found a string at position 12; write dates as date("YYYY-MM-DD")',
    ),
    ("segment = true", 10, "expected a string to compare with segment, found a boolean at position 10"),
    ('(segment = "a"', 0, "unclosed '(' at position 0"),
    ('segment = "a")', 13, "unmatched ')' at position 13"),
    (
        'segment = "a" monetary',
        14,
        "unexpected 'monetary' after a complete condition at position 14; join conditions with 'and' or 'or'",
    ),
    (
        "segment",
        7,
        "expected an operator after 'segment' at position 7; operators are = != < <= > >= in, not in, between",
    ),
    ('segment = "abc', 10, "unterminated string at position 10"),
    ('segment = "a\\qb"', 12, "unknown escape '\\q' at position 12; escapes are \\\\ \\\" \\' \\n \\t \\r"),
    ("segment in ()", 12, "expected a value after '(' at position 12"),
    ('segment in ("a" "b")', 16, "expected ',' or ')' in the list, found a string at position 16"),
    ('segment in ("a"', 11, "unclosed '(' at position 11"),
    ('segment not ("a")', 12, "expected 'in' after 'not' at position 12"),
    ("frequency between 1 or 2", 20, "expected 'and' after '1' at position 20"),
    ("frequency between 5 and 1", 10, "the lower bound is above the upper bound at position 10"),
    ('signup_at = date("2024-02-30")', 17, 'invalid date "2024-02-30" at position 17; write days as YYYY-MM-DD'),
    ("signup_at = date(2024)", 17, "expected a quoted day as in date(\"2024-01-31\"), found '2024' at position 17"),
    ("days_since(segment) > 3", 11, "days_since needs a date field, segment is a string at position 11"),
    ("monetary == 5", 10, "expected a value after '=' at position 10"),
    ("x" * 2001, 2000, "the rule is longer than 2000 characters at position 2000"),
    ("(" * 60 + "frequency = 1" + ")" * 60, MAX_DEPTH, f"the rule nests deeper than {MAX_DEPTH} levels at position 50"),
    ("not " * 51 + "frequency = 1", 200, f"the rule nests deeper than {MAX_DEPTH} levels at position 200"),
]


@pytest.mark.parametrize(("rule", "position", "message"), ERRORS, ids=[e[2][:50] for e in ERRORS])
def test_a_bad_rule_is_refused_with_its_position(rule: str, position: int, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(rule)
    assert (caught.value.position, str(caught.value), caught.value.field) == (position, message, "rule")
    assert validate_rule(rule)[0].message == message


def test_an_unknown_field_names_the_known_ones_and_every_problem_is_listed() -> None:
    problems = validate_rule('colour = "red" and monetary > "lots" or size in (1)', fields={"monetary": "number"})
    assert [(p.position, p.reason) for p in problems] == [
        (0, "unknown field 'colour'"),
        (30, "expected a number to compare with monetary, found a string"),
        (40, "unknown field 'size'"),
    ]
    assert problems[0].hint == "known fields: monetary"
    with pytest.raises(RuleSyntaxError, match="unknown field 'colour' at position 0; known fields: monetary"):
        parse_rule('colour = "red"', fields={"monetary": "number"})


def test_a_caller_whitelist_decides_the_fields_and_their_types() -> None:
    fields: dict[str, FieldType] = {"vip": "boolean", "score": "number"}
    assert str(parse_rule("vip = TRUE and score in (1, 2.50)", fields=fields)) == "vip = true and score in (1, 2.50)"
    with pytest.raises(ValidationError, match="'and' cannot be a rule field name"):
        parse_rule("vip = true", fields={"and": "boolean"})


def test_a_rule_on_a_column_the_table_lacks_is_refused_at_compile_time(members: Any) -> None:
    with pytest.raises(ValidationError, match="the table has no column 'gender'"):
        rule_filter(parse_rule('gender = "F"'), members)


@pytest.mark.parametrize(
    "rule",
    [
        "__import__('os')",
        "monetary; drop table profiles",
        "1 or 1=1",
        "exec('print(1)')",
        "segment = segment",
        "monetary > 0 -- comment",
        "monetary > 0 /* x */",
        'segment = "a" or __class__ = 1',
    ],
)
def test_injection_attempts_are_refused(rule: str) -> None:
    with pytest.raises(RuleSyntaxError):
        parse_rule(rule)


def test_sql_and_python_in_a_string_are_data(members: Any) -> None:
    for payload in ["x' OR '1'='1", '"; DROP TABLE profiles; --', "__import__('os').system('true')"]:
        rule = parse_rule("segment = " + "'" + payload.replace("\\", "\\\\").replace("'", "\\'") + "'")
        assert selected(str(rule), members) == []
        assert parse_rule(str(rule)) == rule


_NUMBER_FIELDS = ["monetary", "frequency", "recency_days", "r_score", "days_since(signup_at)"]
_STRING_FIELDS = ["segment", "region", "member_key"]
_numbers = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False).map(str)
_ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
_text = st.text(max_size=8)  # any text but lone surrogates


def _quoted(text: str, quote: str) -> str:
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


_strings = st.builds(_quoted, _text, st.sampled_from(['"', "'"]))
_dates = st.dates(min_value=date(1000, 1, 1)).map(lambda d: f'date("{d.isoformat()}")')
_conditions = st.one_of(
    st.builds("{} {} {}".format, st.sampled_from(_NUMBER_FIELDS), _ops, _numbers),
    st.builds("{} {} {}".format, st.sampled_from(_STRING_FIELDS), st.sampled_from(["=", "!="]), _strings),
    st.builds("{} {} {}".format, st.sampled_from(["signup_at", "last_order_at"]), _ops, _dates),
    st.builds(
        "{} {} ({})".format,
        st.sampled_from(_STRING_FIELDS),
        st.sampled_from(["in", "NOT  IN"]),
        st.lists(_strings, min_size=1, max_size=3).map(",".join),
    ),
    st.builds("frequency between {} and {}".format, st.integers(-5, 0), st.integers(0, 5)),
)
_rules = st.recursive(
    _conditions,
    lambda inner: st.one_of(
        st.builds("{} {} {}".format, inner, st.sampled_from(["and", "or", "AND", "Or"]), inner),
        st.builds("not {}".format, inner),
        st.builds("( {} )".format, inner),
    ),
    max_leaves=8,
)


@given(_rules)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_canonical_form_parses_back_to_the_same_rule(text: str) -> None:
    assume(text.count("(") + text.lower().count("not") < 40)
    rule = parse_rule(text)
    assert parse_rule(str(rule)) == rule
    assert str(parse_rule(str(rule))) == str(rule)
    compiles(text)


_pieces = st.sampled_from(
    [
        "segment",
        "monetary",
        "signup_at",
        "days_since",
        "date",
        "=",
        ">=",
        "!",
        "(",
        ")",
        ",",
        '"a"',
        "'b",
        "\\",
        "1",
        "-2.5",
        "1.",
        "and",
        "or",
        "not",
        "in",
        "between",
        "true",
        '"2024-01-01"',
        ";",
        "__import__",
        "é",
        "\x00",
    ]
)


@settings(deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_pieces, max_size=30).map(" ".join), st.lists(_pieces).map("".join)))
def test_arbitrary_text_is_parsed_or_refused_cleanly(text: str) -> None:
    try:
        rule = parse_rule(text)
    except RuleSyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        assert validate_rule(text)
        return
    assert validate_rule(text) == []
    assert parse_rule(str(rule)) == rule
    compiles(text)


def test_deep_nesting_never_exhausts_the_stack() -> None:
    for text in ["(" * 1000, "not " * 400 + "frequency = 1", "(" * 500 + ")" * 500]:
        with pytest.raises(RuleSyntaxError, match="deeper than"):
            parse_rule(text)


@pytest.mark.slow
def test_a_rule_on_the_online_retail_profiles_matches_polars(retail: Runtime) -> None:
    reader = reader_for(retail.settings.artefact_dir)
    profiles = reader.table("profiles")
    frame = pl.read_parquet(Path(reader.manifest["path"]) / "profiles.parquet")

    rule = parse_rule('segment = "champions" and monetary > 1000')
    count = int(profiles.filter(rule_filter(rule, profiles)).count().execute())

    expected = frame.filter((pl.col("segment") == "champions") & (pl.col("monetary") > 1000)).height
    assert count == expected > 0
    as_of = date.fromisoformat(reader.manifest["as_of"])
    quiet = parse_rule('days_since(last_order_at) > 90 and region in ("United Kingdom")')
    count = int(profiles.filter(rule_filter(quiet, profiles, as_of=as_of)).count().execute())
    days_quiet = (pl.lit(as_of) - pl.col("last_order_at").dt.date()).dt.total_days() > 90
    assert count == frame.filter(days_quiet & (pl.col("region") == "United Kingdom")).height > 0
