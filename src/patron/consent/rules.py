"""Consent purposes, what applies when a member was never asked, and why.

=================== ======== ===================================================================
purpose             default  legal reasoning
=================== ======== ===================================================================
marketing_email     denied   opt-in: direct marketing by e-mail needs prior consent
                             (GDPR Art. 6(1)(a) with ePrivacy Art. 13; PIPL Art. 13-14)
marketing_sms       denied   opt-in, as e-mail
marketing_push      denied   opt-in, as e-mail
personalization     granted  legitimate interest (GDPR Art. 6(1)(f)) with the right to object
                             (Art. 21); PIPL Art. 24 asks for an easy way to refuse
                             personalized targeting: an opt-out, honoured at once
analytics           granted  legitimate interest in aggregate, pseudonymous analysis
                             (GDPR Art. 6(1)(f)); an objection is recorded as denied
=================== ======== ===================================================================

A restriction of processing (GDPR Art. 18, PIPL Art. 44) overrides every
purpose: nothing is allowed while it holds. ``withdrawn`` means a consent that
was granted (or implied by the default) and is taken back; ``denied`` means the
member said no when asked.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "DEFAULT_GRANTED",
    "DEFAULTS",
    "PURPOSES",
    "STATES",
    "BlockReason",
    "ConsentSource",
    "ConsentState",
    "Purpose",
    "default_state",
]

Purpose = Literal["marketing_email", "marketing_sms", "marketing_push", "personalization", "analytics"]
ConsentState = Literal["granted", "denied", "withdrawn"]
ConsentSource = Literal["console", "api", "cli", "import", "checkout"]
BlockReason = Literal["consent_denied", "consent_withdrawn", "processing_restricted"]

PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
STATES: tuple[ConsentState, ...] = get_args(ConsentState)
DEFAULTS: dict[Purpose, ConsentState] = {
    "marketing_email": "denied",
    "marketing_sms": "denied",
    "marketing_push": "denied",
    "personalization": "granted",
    "analytics": "granted",
}
DEFAULT_GRANTED: frozenset[Purpose] = frozenset(p for p, state in DEFAULTS.items() if state == "granted")


def default_state(purpose: Purpose) -> ConsentState:
    """The state of a purpose the member was never asked about."""
    return DEFAULTS[purpose]
