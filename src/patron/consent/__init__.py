"""Consent: per member and purpose the current state and its history; restrictions of processing.

The question other code asks is :func:`patron.consent.service.allowed`.
"""

__all__: list[str] = []
