"""Password rules: long enough, hard to guess, and not on the list of commonly breached passwords.

The strength estimate and the breached-password list are zxcvbn's: its
``passwords`` dictionary holds the most common passwords of public breaches
(ranked by frequency) and ships with the library, so no password ever leaves
the machine. A password is refused when one entry of that list (or a l33t or
reversed spelling of it) makes up three quarters of it or more, or when its
estimated strength is below 3 on zxcvbn's 0-4 scale (fewer than about 10^8
guesses). The operator's own name counts as a guessable word.
"""

from __future__ import annotations

from collections.abc import Iterable

from zxcvbn import zxcvbn  # type: ignore[import-untyped]

__all__ = ["MIN_LENGTH", "MIN_SCORE", "password_problem"]

MIN_LENGTH = 10
MIN_SCORE = 3
_CHECKED = 100  # zxcvbn's cost grows with length; longer passwords are judged on their first 100 characters
_BREACHED_SHARE = 0.75


def password_problem(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why ``password`` is refused, or None if it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    sample = password[:_CHECKED]
    result = zxcvbn(sample, user_inputs=[u for u in user_inputs if u])
    for match in result["sequence"]:
        if match.get("dictionary_name") == "passwords" and len(match["token"]) >= _BREACHED_SHARE * len(sample):
            return "this password is on the list of commonly breached passwords"
    if result["score"] < MIN_SCORE:
        warning = result.get("feedback", {}).get("warning") or "it would be guessed quickly"
        return f"this password is too easy to guess: {warning.rstrip('.').lower()}"
    return None
