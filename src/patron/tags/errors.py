"""Errors of rule tags.

::

    ValidationError
    └── RuleSyntaxError   a rule cannot be read; carries the 0-based ``position``
"""

from __future__ import annotations

from patron.errors import ValidationError

__all__ = ["RuleSyntaxError"]


class RuleSyntaxError(ValidationError):
    """A rule is malformed or refers to unknown fields or mismatched types.

    ``position`` is the 0-based character offset of the problem in the rule
    text; ``reason`` and ``hint`` are the message without the position, for a
    console that points at the spot itself.
    """

    def __init__(self, reason: str, position: int, hint: str = "", field: str | None = "rule") -> None:
        super().__init__(f"{reason} at position {position}" + (f"; {hint}" if hint else ""), field=field)
        self.reason = reason
        self.position = position
        self.hint = hint
