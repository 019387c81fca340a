"""Rule tags: operator-defined conditions over profile fields, run in the warehouse."""

from __future__ import annotations

from patron.tags.errors import RuleSyntaxError
from patron.tags.rules import DEFAULT_FIELDS, FieldType, Rule, RuleProblem, parse_rule, rule_filter, validate_rule

__all__ = [
    "DEFAULT_FIELDS",
    "FieldType",
    "Rule",
    "RuleProblem",
    "RuleSyntaxError",
    "parse_rule",
    "rule_filter",
    "validate_rule",
]
