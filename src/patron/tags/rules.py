"""Rule tags: a small expression language over profile fields, compiled to Ibis.

Rules are never eval'ed: the text is tokenised, parsed by recursive descent
into a frozen AST checked against a whitelist of fields, and compiled to an
Ibis boolean expression that runs in the warehouse. Grammar: docs/tags.md.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import reduce
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, cast

import ibis
import ibis.expr.types as ir

from patron.errors import ValidationError
from patron.tags.errors import RuleSyntaxError

__all__ = [
    "DEFAULT_FIELDS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "Between",
    "Compare",
    "DaysSince",
    "Field",
    "FieldType",
    "InList",
    "Not",
    "Or",
    "Rule",
    "RuleProblem",
    "parse_rule",
    "rule_filter",
    "validate_rule",
]

FieldType = Literal["number", "string", "date", "boolean"]
CompareOp = Literal["=", "!=", "<", "<=", ">", ">="]
Value = str | Decimal | bool | date
MAX_LENGTH = 2000
MAX_DEPTH = 50

DEFAULT_FIELDS: Mapping[str, FieldType] = MappingProxyType(
    {"member_key": "string", "recency_days": "number", "frequency": "number", "monetary": "number",
     "first_order_at": "date", "last_order_at": "date", "r_score": "number", "f_score": "number",
     "m_score": "number", "segment": "string", "source": "string", "region": "string", "gender": "string",
     "channel": "string", "signup_at": "date", "lifecycle": "string", "p_alive": "number",
     "expected_purchases_90d": "number", "clv_12m": "number", "churn_risk": "number", "cluster": "number",
     "top_category": "string", "top_category_share": "number", "price_band": "string",
     "discount_sensitivity": "string", "preferred_weekday": "number", "preferred_hour": "number",
     "main_channel": "string"}
)  # fmt: skip
_KEYWORDS = frozenset({"and", "or", "not", "in", "between", "true", "false"})
_ORDERED: tuple[FieldType, ...] = ("number", "date")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE_HINT = "escapes are \\\\ \\\" \\' \\n \\t \\r"
_QUOTE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<number>-?[0-9]+(?:\.[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|=|<|>)"
    r"|(?P<punct>[(),])",
    re.ASCII,
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return f'date("{value.isoformat()}")'
    return '"' + "".join(_QUOTE.get(c, c) for c in value) + '"'


@dataclass(frozen=True)
class Field:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class DaysSince:
    """Whole days from a date field to the as-of day."""

    field: str

    def __str__(self) -> str:
        return f"days_since({self.field})"


Operand = Field | DaysSince


@dataclass(frozen=True)
class Compare:
    left: Operand
    op: CompareOp
    value: Value

    def __str__(self) -> str:
        return f"{self.left} {self.op} {_literal(self.value)}"


@dataclass(frozen=True)
class InList:
    left: Operand
    values: tuple[Value, ...]
    negated: bool = False

    def __str__(self) -> str:
        return f"{self.left} {'not in' if self.negated else 'in'} ({', '.join(map(_literal, self.values))})"


@dataclass(frozen=True)
class Between:
    left: Operand
    low: Value
    high: Value

    def __str__(self) -> str:
        return f"{self.left} between {_literal(self.low)} and {_literal(self.high)}"


@dataclass(frozen=True)
class Not:
    operand: Rule

    def __str__(self) -> str:
        return f"not ({self.operand})" if isinstance(self.operand, And | Or) else f"not {self.operand}"


@dataclass(frozen=True)
class And:
    items: tuple[Rule, ...]

    def __str__(self) -> str:
        return " and ".join(f"({i})" if isinstance(i, And | Or) else str(i) for i in self.items)


@dataclass(frozen=True)
class Or:
    items: tuple[Rule, ...]

    def __str__(self) -> str:
        return " or ".join(f"({i})" if isinstance(i, Or) else str(i) for i in self.items)


Rule = Compare | InList | Between | Not | And | Or


@dataclass(frozen=True)
class RuleProblem:
    """One problem of a rule, for a console form that points at ``position``."""

    position: int
    reason: str
    hint: str = ""

    @property
    def message(self) -> str:
        return f"{self.reason} at position {self.position}" + (f"; {self.hint}" if self.hint else "")


class _Token(NamedTuple):
    kind: str  # number, name, op, string, "(", ")", ",", end
    text: str
    pos: int
    value: str = ""  # a string literal's unescaped content


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "the end of the rule"
    return "a string" if tok.kind == "string" else f"{tok.text!r}"


def _string(text: str, start: int) -> tuple[_Token, int]:
    quote, pos = text[start], start + 1
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return _Token("string", text[start : pos + 1], start, "".join(out)), pos + 1
        if char == "\\" and pos + 1 < len(text):
            if text[pos + 1] not in _ESCAPES:
                raise RuleSyntaxError(f"unknown escape '\\{text[pos + 1]}'", pos, _ESCAPE_HINT)
            char, pos = _ESCAPES[text[pos + 1]], pos + 1
        out.append(char)
        pos += 1
    raise RuleSyntaxError("unterminated string", start)


def _tokens(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos] in "\"'":
            token, pos = _string(text, pos)
            tokens.append(token)
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RuleSyntaxError(f"unexpected character {text[pos]!r}", pos)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(match.group() if kind == "punct" else kind, match.group(), pos))
        pos = match.end()
    return [*tokens, _Token("end", "", len(text))]


class _Parser:
    """Recursive descent; syntax errors raise, field and type problems are collected."""

    def __init__(self, text: str, fields: Mapping[str, FieldType]) -> None:
        self.tokens, self.fields, self.i, self.depth = _tokens(text), fields, 0, 0
        self.problems: list[RuleSyntaxError] = []

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "name" and tok.text.lower() == word

    def expect(self, kind: str, reason: str) -> _Token:
        if self.peek().kind != kind:
            raise RuleSyntaxError(f"{reason}, found {_describe(self.peek())}", self.peek().pos)
        return self.advance()

    def rule(self) -> Rule:
        if self.peek().kind == "end":
            raise RuleSyntaxError("the rule is empty", 0)
        node = self.disjunction()
        tok = self.peek()
        if tok.kind == ")":
            raise RuleSyntaxError("unmatched ')'", tok.pos)
        if tok.kind != "end":
            raise RuleSyntaxError(
                f"unexpected {_describe(tok)} after a complete condition", tok.pos, "join conditions with 'and' or 'or'"
            )
        return node

    def disjunction(self) -> Rule:
        items = [self.conjunction()]
        while self.keyword("or"):
            self.advance()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Rule:
        items = [self.negation()]
        while self.keyword("and"):
            self.advance()
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def nest(self, tok: _Token, inner: Callable[[], Rule]) -> Rule:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleSyntaxError(f"the rule nests deeper than {MAX_DEPTH} levels", tok.pos)
        node = inner()
        self.depth -= 1
        return node

    def negation(self) -> Rule:
        if self.keyword("not"):
            return Not(self.nest(self.advance(), self.negation))
        if self.peek().kind == "(":
            opening = self.advance()
            node = self.nest(opening, self.disjunction)
            if self.peek().kind == "end":
                raise RuleSyntaxError("unclosed '('", opening.pos)
            self.expect(")", "expected ')', 'and' or 'or'")
            return node
        return self.predicate()

    def predicate(self) -> Rule:
        left, kind = self.operand()
        tok = self.advance()
        if tok.kind == "op":
            if tok.text not in ("=", "!=") and kind not in (None, *_ORDERED):
                self.problem(f"{tok.text!r} does not apply to {kind} field {left}", tok.pos, "use = or !=")
            return Compare(left, cast(CompareOp, tok.text), self.value(left, kind, tok))
        if tok.kind == "name" and tok.text.lower() in ("in", "not"):
            negated = tok.text.lower() == "not"
            if negated and not self.keyword("in"):
                raise RuleSyntaxError("expected 'in' after 'not'", self.peek().pos)
            return InList(left, self.values(left, kind, self.advance() if negated else tok), negated)
        if tok.kind == "name" and tok.text.lower() == "between":
            return self.between(left, kind, tok)
        raise RuleSyntaxError(
            f"expected an operator after {str(left)!r}", tok.pos, "operators are = != < <= > >= in, not in, between"
        )

    def between(self, left: Operand, kind: FieldType | None, tok: _Token) -> Between:
        if kind not in (None, *_ORDERED):
            self.problem(f"'between' does not apply to {kind} field {left}", tok.pos)
        low = self.value(left, kind, tok)
        if not self.keyword("and"):
            raise RuleSyntaxError(f"expected 'and' after {_describe(self.tokens[self.i - 1])}", self.peek().pos)
        high = self.value(left, kind, self.advance())
        if type(low) is type(high) and not isinstance(low, str | bool) and low > high:  # type: ignore[operator]
            self.problem("the lower bound is above the upper bound", tok.pos)
        return Between(left, low, high)

    def operand(self) -> tuple[Operand, FieldType | None]:
        tok = self.expect("name", "expected a field name")
        if tok.text.lower() in _KEYWORDS:
            raise RuleSyntaxError(f"expected a field name, found {tok.text!r}", tok.pos)
        if self.peek().kind != "(":
            return Field(tok.text), self.field_type(tok)
        if tok.text != "days_since":
            raise RuleSyntaxError(
                f"unknown function {tok.text!r}", tok.pos, "a condition starts with a field name or days_since(field)"
            )
        self.advance()
        inner = self.expect("name", "expected a date field after 'days_since('")
        if (kind := self.field_type(inner)) not in (None, "date"):
            self.problem(f"days_since needs a date field, {inner.text} is a {kind}", inner.pos)
        self.expect(")", "expected ')' after the field")
        return DaysSince(inner.text), "number"

    def field_type(self, tok: _Token) -> FieldType | None:
        if tok.text not in self.fields:
            self.problem(f"unknown field {tok.text!r}", tok.pos, "known fields: " + ", ".join(sorted(self.fields)))
        return self.fields.get(tok.text)

    def values(self, left: Operand, kind: FieldType | None, after: _Token) -> tuple[Value, ...]:
        opening = self.expect("(", f"expected '(' after {after.text!r}")
        items = [self.value(left, kind, opening)]
        while (sep := self.advance()).kind == ",":
            items.append(self.value(left, kind, sep))
        if sep.kind == "end":
            raise RuleSyntaxError("unclosed '('", opening.pos)
        if sep.kind != ")":
            raise RuleSyntaxError(f"expected ',' or ')' in the list, found {_describe(sep)}", sep.pos)
        return tuple(items)

    def value(self, left: Operand, kind: FieldType | None, after: _Token) -> Value:
        tok = self.advance()
        word = tok.text.lower() if tok.kind == "name" else ""
        value: Value
        if tok.kind in ("string", "number"):
            value = tok.value if tok.kind == "string" else Decimal(tok.text)
        elif word in ("true", "false"):
            value = word == "true"
        elif tok.text == "date" and self.peek().kind == "(":
            value = self.date_literal()
        else:
            raise RuleSyntaxError(f"expected a value after {after.text!r}", tok.pos)
        found = _type_of(value)
        if kind is not None and found != kind:
            hint = 'write dates as date("YYYY-MM-DD")' if kind == "date" else ""
            self.problem(f"expected a {kind} to compare with {left}, found a {found}", tok.pos, hint)
        return value

    def date_literal(self) -> date:
        self.advance()
        tok = self.expect("string", 'expected a quoted day as in date("2024-01-31")')
        self.expect(")", "expected ')' after the date")
        try:
            if _ISO_DATE.fullmatch(tok.value):
                return date.fromisoformat(tok.value)
        except ValueError:
            pass
        raise RuleSyntaxError(f"invalid date {tok.text}", tok.pos, "write days as YYYY-MM-DD")

    def problem(self, reason: str, pos: int, hint: str = "") -> None:
        self.problems.append(RuleSyntaxError(reason, pos, hint))


def _type_of(value: Value) -> FieldType:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Decimal):
        return "number"
    return "date" if isinstance(value, date) else "string"


def _check_fields(fields: Mapping[str, FieldType]) -> None:
    for name, kind in fields.items():
        if not _IDENTIFIER.fullmatch(name) or name.lower() in _KEYWORDS or name == "days_since":
            raise ValidationError(f"{name!r} cannot be a rule field name", field="fields")
        if kind not in ("number", "string", "date", "boolean"):
            raise ValidationError(f"field {name!r} has unknown type {kind!r}", field="fields")


def _parse(text: str, fields: Mapping[str, FieldType]) -> tuple[Rule | None, list[RuleSyntaxError]]:
    _check_fields(fields)
    if len(text) > MAX_LENGTH:
        raise RuleSyntaxError(f"the rule is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(text, fields)
    try:
        node: Rule | None = parser.rule()
    except RuleSyntaxError as exc:
        node, parser.problems = None, [*parser.problems, exc]
    return node, sorted(parser.problems, key=lambda p: p.position)


def parse_rule(text: str, fields: Mapping[str, FieldType] = DEFAULT_FIELDS) -> Rule:
    """The AST of ``text``; raises :class:`RuleSyntaxError` at the first problem."""
    node, problems = _parse(text, fields)
    if problems or node is None:
        raise problems[0]
    return node


def validate_rule(text: str, fields: Mapping[str, FieldType] = DEFAULT_FIELDS) -> list[RuleProblem]:
    """Every problem found in ``text`` (empty if the rule is valid), by position."""
    try:
        _, problems = _parse(text, fields)
    except RuleSyntaxError as exc:
        problems = [exc]
    return [RuleProblem(p.position, p.reason, p.hint) for p in problems]


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def _constant(value: Value) -> Any:
    if isinstance(value, Decimal):
        whole = value == value.to_integral_value() and abs(value) < 2**63
        return int(value) if whole else float(value)
    return value


def _operand(node: Operand, table: ir.Table, as_of: date | None) -> Any:
    name = node.name if isinstance(node, Field) else node.field
    if name not in table.columns:
        raise ValidationError(f"the table has no column {name!r}", field="rule")
    column = table[name]
    if column.type().is_timestamp():  # the language knows days, not instants
        column = column.date()
    if isinstance(node, Field):
        return column
    today = ibis.today() if as_of is None else ibis.literal(as_of)
    return today.delta(column, unit="day")


def rule_filter(rule: Rule, table: ir.Table, *, as_of: date | None = None) -> ir.BooleanValue:
    """An Ibis predicate selecting the rows of ``table`` that match ``rule``.

    A comparison with a missing value is false (so ``not`` is a true
    complement). ``days_since`` counts from ``as_of``, by default the
    warehouse's current day.
    """
    if isinstance(rule, And | Or):
        parts = [rule_filter(item, table, as_of=as_of) for item in rule.items]
        return reduce(operator.and_ if isinstance(rule, And) else operator.or_, parts)
    if isinstance(rule, Not):
        return ~rule_filter(rule.operand, table, as_of=as_of)
    left = _operand(rule.left, table, as_of)
    if isinstance(rule, Compare):
        predicate = _OPS[rule.op](left, _constant(rule.value))
    elif isinstance(rule, InList):
        predicate = left.isin([_constant(v) for v in rule.values])
        predicate = ~predicate if rule.negated else predicate
    else:
        predicate = left.between(_constant(rule.low), _constant(rule.high))
    return predicate.fill_null(False)
