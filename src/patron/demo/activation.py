"""The demo shop's activation side: a trained recommendation version with placements, and a loyalty program.

Run once per data directory (each part is skipped when it exists): a hybrid
recommendation version serving a ``home`` member placement, an item-kNN
version serving ``pdp`` (similar items) and association rules serving
``cart`` (bought together); three member tiers (银卡 / 金卡 / 钻石), a base
earning rule, a member day on the 18th with double points, a Double-11
campaign, a welcome coupon, a 满减 promotion, a rewards catalog; and points
earned for the shop's most recent orders, so member pages show balances, lots
and ledgers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from patron.errors import ConflictError
from patron.progress import NullProgress, Progress
from patron.runtime import Runtime

__all__ = ["seed_activation"]

RECENT_ORDERS = 300  # orders (the newest) whose points the demo records


def seed_activation(runtime: Runtime, progress: Progress | None = None) -> dict[str, Any]:
    """Train and place recommendation versions and set up the loyalty program (idempotent)."""
    progress = progress or NullProgress()
    summary: dict[str, Any] = {}
    summary["recs"] = _recommendations(runtime, progress)
    summary["loyalty"] = _loyalty(runtime, progress)
    return summary


def _recommendations(runtime: Runtime, progress: Progress) -> list[str]:
    from patron.recs import registry
    from patron.recs.registry import PlacementKind, VariantIn
    from patron.recs.service import configure

    placed = {p.name for p in registry.list_placements(runtime.store)}
    plans: list[tuple[str, PlacementKind, str, dict[str, Any]]] = [
        ("home", "member", "hybrid", {}),
        ("pdp", "similar", "itemknn", {}),
        ("cart", "bought_together", "assoc", {}),
    ]
    done = []
    for placement, kind, model, params in plans:
        if placement in placed:
            continue
        progress.stage(f"Training the {model} recommendation model")
        version = registry.train(runtime, model, params, "demo")
        configure(runtime.store, placement, [VariantIn(name="a", version_id=version.id, share_bp=10_000)], "demo", kind)
        done.append(f"{placement}:{version.id}")
    return done


def _loyalty(runtime: Runtime, progress: Progress) -> dict[str, int]:
    from patron.loyalty.program_rules import EarningRuleCreate, create_rule, list_rules
    from patron.loyalty.tiers import TierCreate, create_tier, list_tiers
    from patron.promotions.rewards import create_reward
    from patron.promotions.schemas import RewardCreate, TemplateCreate
    from patron.promotions.templates import create_template, list_templates

    with runtime.store.session() as session:
        if list_tiers(session) or list_rules(session) or list_templates(session):
            return {"orders": 0}
    progress.stage("Setting up the loyalty program")
    with runtime.store.session() as session:
        create_template(
            session,
            TemplateCreate(
                code="WELCOME20", name="新人礼 20 元", kind="fixed", params={"amount": "20"}, min_spend=Decimal(99)
            ),
            "demo",
        )
        create_template(
            session,
            TemplateCreate(
                code="MJ-300-30",
                name="满 300 减 30 / 满 500 减 60",
                kind="threshold_tiers",
                params={"tiers": [{"threshold": "300", "discount": "30"}, {"threshold": "500", "discount": "60"}]},
                automatic=True,
                stack_group="store",
            ),
            "demo",
        )
        create_template(
            session,
            TemplateCreate(code="GOLD-SHIP", name="金卡包邮", kind="free_shipping", tiers=["gold", "diamond"]),
            "demo",
        )
    for tier in (
        TierCreate(code="silver", name="银卡", threshold=Decimal(0)),
        TierCreate(code="gold", name="金卡", threshold=Decimal(2000), multiplier=Decimal("1.5"), coupons=["GOLD-SHIP"]),
        TierCreate(code="diamond", name="钻石", threshold=Decimal(8000), multiplier=Decimal(2), free_shipping=True),
    ):
        create_tier(runtime.store, tier)
    rules = [
        EarningRuleCreate(name="每消费 1 元积 1 分", kind="base", points_per_unit=Decimal(1)),
        EarningRuleCreate(
            name="会员日双倍积分", kind="multiplier", scope="member_day", multiplier=Decimal(2), day_of_month=18
        ),
        EarningRuleCreate(
            name="双十一三倍积分",
            kind="multiplier",
            scope="campaign",
            match="double-11",
            multiplier=Decimal(3),
            starts_at=datetime(2026, 11, 11, tzinfo=UTC),
            ends_at=datetime(2026, 11, 12, tzinfo=UTC),
        ),
        EarningRuleCreate(name="单日积分上限", kind="cap", period="day", max_points=20_000),
    ]
    for rule in rules:
        try:
            create_rule(runtime.store, rule, "demo")
        except ConflictError:
            continue
    with runtime.store.session() as session:
        create_reward(
            session,
            RewardCreate(name="20 元无门槛券", kind="coupon", points_cost=2000, template_code="WELCOME20", stock=500),
            "demo",
        )
        create_reward(session, RewardCreate(name="定制帆布袋", kind="gift", points_cost=5000, stock=100), "demo")
    return {"orders": _recent_orders(runtime, progress)}


def _recent_orders(runtime: Runtime, progress: Progress) -> int:
    """Record the newest completed member orders, so that their points are earned (pending or active)."""
    from patron.loyalty.earning import OrderIn, OrderLineIn
    from patron.loyalty.program import record_order

    with runtime.warehouse(read_only=True) as warehouse:
        orders = warehouse.table("orders")
        lines = warehouse.table("order_lines")
        products = warehouse.table("products")
        recent = (
            orders.filter(orders.member_key.notnull() & (orders.status == "completed"))
            .order_by(orders.ordered_at.desc())
            .limit(RECENT_ORDERS)
        )
        joined = (
            recent.join(lines, "order_key")
            .left_join(products, lines.product_key == products.product_key)
            .select(
                recent.order_key,
                recent.member_key,
                recent.ordered_at,
                lines.product_key,
                products.category,
                products.brand,
                lines.quantity,
                lines.amount,
            )
            .to_pyarrow()
            .to_pylist()
        )
    by_order: dict[str, list[dict[str, Any]]] = {}
    for row in joined:
        by_order.setdefault(row["order_key"], []).append(row)
    progress.stage("Earning points for recent orders", total=len(by_order))
    now = datetime.now(UTC)
    newest = max((r["ordered_at"] for r in joined), default=None)
    shift = timedelta(0) if newest is None else now - newest.replace(tzinfo=UTC) - timedelta(days=1)
    recorded = 0
    for key, rows in by_order.items():
        paid = rows[0]["ordered_at"].replace(tzinfo=UTC) + shift  # the demo's history ends now
        order_lines = [
            OrderLineIn(
                sku=str(r["product_key"] or "unknown")[:64],
                category=(str(r["category"])[:64] if r["category"] else None),
                brand=(str(r["brand"])[:64] if r["brand"] else None),
                quantity=max(1, int(r["quantity"])),
                amount=Decimal(str(round(max(float(r["amount"]), 0.0), 2))),
            )
            for r in rows
        ]
        order = OrderIn(order_key=key[:64], member_key=rows[0]["member_key"], paid_at=paid, lines=order_lines)
        record_order(runtime.store, order, f"demo-{key}"[:64], "demo")
        recorded += 1
        progress.advance()
    return recorded
