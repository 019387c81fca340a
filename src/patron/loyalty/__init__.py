"""Loyalty: the points ledger, earning rules, tiers and scheduled jobs."""
