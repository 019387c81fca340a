"""Retention: how long each data category is kept, and the job that purges or anonymizes what is older.

See :mod:`patron.retention.categories` for the categories and their default periods, and docs/retention.md.
"""

from patron.retention.schemas import CategoryResult, PolicyRead, RetentionReport
from patron.retention.service import PURGED, periods, policies, run_retention

__all__ = ["PURGED", "CategoryResult", "PolicyRead", "RetentionReport", "periods", "policies", "run_retention"]
