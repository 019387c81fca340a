"""Churn risk: a supervised model trained with a temporal cut-off, validated on a later window.

Per member: the probability of no completed order over the horizon, and up to three reason codes
(feature identifiers of :data:`FEATURES`). Entry point for the build: :func:`churn_step`.
"""

from patron.churn.features import FEATURES, OrderFacts, cached_order_facts, churn_labels, member_features, order_facts
from patron.churn.service import (
    REPORT_FILE,
    TABLE_SCHEMA,
    ChurnResult,
    churn_step,
    read_churn_report,
    write_churn_report,
)

__all__ = [
    "FEATURES",
    "REPORT_FILE",
    "TABLE_SCHEMA",
    "ChurnResult",
    "OrderFacts",
    "cached_order_facts",
    "churn_labels",
    "churn_step",
    "member_features",
    "order_facts",
    "read_churn_report",
    "write_churn_report",
]
