"""Free-text notes that must not carry personal data (consent evidence, request notes).

Operators sometimes paste what they have at hand; a note is refused when it
looks like it holds an e-mail address or a phone number, so such values never
reach tables that outlive an erasure. This is a guard, not a proof: the field
descriptions ask for no personal data at all.
"""

from __future__ import annotations

import re

from patron.errors import ValidationError

__all__ = ["check_note"]

_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
# "+44 7700 900123", "(020) 7946 0018", "138 0013 8000": digits broken by spaces, dots or brackets,
# or led by "+"; plain digit runs and dash-joined numbers (ids, dates) pass
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{6,}\d")


def _phone_like(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    separated = any(ch in " ().\t" for ch in candidate)
    return digits >= 8 and (candidate.startswith("+") or separated)


def check_note(value: str, field: str, limit: int) -> str:
    """The stripped note, or a ValidationError naming ``field``."""
    text = value.strip()
    if len(text) > limit:
        raise ValidationError(f"{field} must be at most {limit} characters", field=field)
    if _EMAIL.search(text):
        raise ValidationError(f"{field} must not hold personal data (it looks like an e-mail address)", field=field)
    if any(_phone_like(m.group()) for m in _PHONE.finditer(text)):
        raise ValidationError(f"{field} must not hold personal data (it looks like a phone number)", field=field)
    if any(ord(ch) < 0x20 and ch not in "\t" for ch in text):
        raise ValidationError(f"{field} must be one line of text", field=field)
    return text
