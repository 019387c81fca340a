"""Warehouse tables: the shop's history, keyed by opaque member keys only."""

from __future__ import annotations

import ibis
import ibis.expr.schema as sch

__all__ = ["NATURAL_KEYS", "TABLES"]

TABLES: dict[str, sch.Schema] = {
    "members": ibis.schema(
        {
            "member_key": "!string",
            "source": "!string",
            "signup_at": "timestamp",
            "gender": "string",
            "birth_year": "int32",
            "region": "string",
            "city": "string",
            "channel": "string",
        }
    ),
    # Position of each member in its source's customer-id order (rank 1 = smallest
    # id). The RFM frequency score breaks ties by it; the id itself stays out.
    "member_order": ibis.schema({"member_key": "!string", "source": "!string", "source_rank": "!int64"}),
    "products": ibis.schema(
        {
            "product_key": "!string",
            "source": "!string",
            "title": "string",
            "category": "string",
            "brand": "string",
            "price": "float64",
        }
    ),
    "orders": ibis.schema(
        {
            "order_key": "!string",
            "source": "!string",
            "member_key": "string",  # null for guest checkouts
            "ordered_at": "!timestamp",
            "status": "!string",  # completed | cancelled
            "channel": "string",
            "amount": "!float64",
            "discount": "!float64",
        }
    ),
    "order_lines": ibis.schema(
        {
            "order_key": "!string",
            "line_no": "!int32",
            "product_key": "string",
            "quantity": "!int64",
            "unit_price": "!float64",
            "amount": "!float64",
            "discount": "!float64",
            "returned": "!boolean",
        }
    ),
    "events": ibis.schema(
        {
            "event_key": "!string",
            "source": "!string",
            "member_key": "string",
            "session_id": "string",
            "product_key": "string",
            "category": "string",
            "event_type": "!string",  # view | fav | cart | purchase | ...
            "occurred_at": "!timestamp",
            "channel": "string",
        }
    ),
    # Stock counts: one row per product and count time (a history of snapshots, never updated).
    # The forecast step reads the latest count per product; safety_stock is the low-stock threshold.
    "inventory": ibis.schema(
        {
            "product_key": "!string",
            "updated_at": "!timestamp",
            "on_hand": "!int64",
            "lead_time_days": "!int32",
            "safety_stock": "!int64",
        }
    ),
}

NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "members": ("member_key",),
    "products": ("product_key",),
    "orders": ("order_key",),
    "order_lines": ("order_key", "line_no"),
    "events": ("event_key",),
    "inventory": ("product_key", "updated_at"),
}
