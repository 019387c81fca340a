"""Orders and their promotions: checkout holds coupons and automatic promotions, payment keeps, cancellation gives back.

Runs on SQLite, and on PostgreSQL when PATRON_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import select

from patron.db.engine import OperationalStore
from patron.errors import ConflictError
from patron.promotions import orders
from patron.promotions.coupons import write_once
from patron.promotions.models import PromotionRedemption, PromotionUsage
from patron.promotions.schemas import (
    CartLineIn,
    CartRequest,
    CheckoutRead,
    CheckoutRequest,
    PricedCartRead,
    TemplateUpdate,
)
from patron.promotions.service import price
from patron.promotions.templates import get_template, update_template
from patron.runtime import Runtime
from tests.promotions.test_coupons import CLIENTS, D, issue, make_template, member


def _cart(order: str, buyer: str | None, *coupons: str, price: str = "50") -> CheckoutRequest:
    lines = [CartLineIn(line_id="1", product="p1", unit_price=D(price), quantity=2)]
    return CheckoutRequest(order_reference=order, lines=lines, member_key=buyer, coupons=list(coupons))


def _checkout(runtime: Runtime, request: CheckoutRequest) -> CheckoutRead:
    with runtime.store.session() as session:
        return orders.checkout(runtime, session, request)


def _counters(runtime: Runtime, code: str) -> tuple[int, Decimal]:
    with runtime.store.session() as session:
        template = get_template(session, code)
    return template.used, template.spent


def _member_uses(runtime: Runtime, code: str, buyer: str) -> int:
    with runtime.store.session() as session:
        template_id = get_template(session, code).id
        usage = session.get(PromotionUsage, (template_id, buyer))
    return 0 if usage is None else usage.uses


def test_checkout_holds_the_automatic_promotion_and_the_coupon_payment_keeps_them(runtime: Runtime) -> None:
    make_template(runtime, "AUTO5", automatic=True, params={"amount": "5"}, per_member_limit=3)
    make_template(runtime, "COUPON", kind="percent", params={"percent": "10"})
    buyer = member()
    code = issue(runtime, "COUPON", buyer)

    placed = _checkout(runtime, _cart("o-1", buyer, code))

    assert placed.cart.total == D("85.50")  # 100 - 5, then 10 % of 95
    assert sorted((u.template_code, u.coupon_code, u.discount, u.status) for u in placed.uses) == [
        ("AUTO5", None, D("5.00"), "reserved"),
        ("COUPON", code, D("9.50"), "reserved"),
    ]
    assert _counters(runtime, "AUTO5") == (1, D("5"))
    assert _member_uses(runtime, "AUTO5", buyer) == 1
    with runtime.store.session() as session:
        paid = orders.pay_order(session, "o-1")
    assert {u.status for u in paid.uses} == {"redeemed"}
    with runtime.store.session() as session:
        assert orders.pay_order(session, "o-1") == paid  # paid already: nothing more to do
        assert orders.pay_order(session, "o-without-promotions").uses == []


def test_cancellation_gives_the_uses_back_and_the_order_may_check_out_again(runtime: Runtime) -> None:
    make_template(runtime, "AUTO5", automatic=True, params={"amount": "5"}, budget="100")
    make_template(runtime, "COUPON", kind="fixed", params={"amount": "10"})
    buyer = member()
    code = issue(runtime, "COUPON", buyer)
    _checkout(runtime, _cart("o-1", buyer, code))
    with runtime.store.session() as session:
        orders.pay_order(session, "o-1")

    with runtime.store.session() as session:
        cancelled = orders.cancel_order(session, "o-1")

    assert {u.status for u in cancelled.uses} == {"released"}
    assert _counters(runtime, "AUTO5") == (0, D("0"))
    assert _counters(runtime, "COUPON") == (0, D("0"))
    assert _member_uses(runtime, "AUTO5", buyer) == 0
    with runtime.store.session() as session:
        assert orders.cancel_order(session, "o-1") == cancelled  # again: nothing left to give back
    with pytest.raises(ConflictError, match="cancelled"), runtime.store.session() as session:
        orders.pay_order(session, "o-1")
    again = _checkout(runtime, _cart("o-1", buyer, code))
    assert [u.status for u in again.uses] == ["released", "released", "reserved", "reserved"]
    assert _counters(runtime, "AUTO5") == (1, D("5"))


def test_an_order_holds_its_promotions_once(runtime: Runtime) -> None:
    make_template(runtime, "AUTO5", automatic=True, params={"amount": "5"})
    buyer = member()
    _checkout(runtime, _cart("o-1", buyer))

    with pytest.raises(ConflictError, match="holds promotions already"):
        _checkout(runtime, _cart("o-1", buyer))  # its own session, rolled back
    assert _counters(runtime, "AUTO5") == (1, D("5"))


def _priced(runtime: Runtime, request: CheckoutRequest) -> PricedCartRead:
    cart = CartRequest(lines=request.lines, member_key=request.member_key, coupons=request.coupons)
    with runtime.store.session() as session:
        return price(runtime, session, cart)


def _nothing_held(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        assert session.scalars(select(PromotionRedemption)).all() == []


def test_a_use_taken_since_pricing_fails_the_whole_checkout_and_holds_nothing(runtime: Runtime) -> None:
    make_template(runtime, "COUPON", kind="fixed", params={"amount": "10"})
    make_template(runtime, "AUTO5", automatic=True, params={"amount": "5"}, global_limit=1)
    buyer = member()
    request = _cart("o-1", buyer, issue(runtime, "COUPON", buyer))
    priced = _priced(runtime, request)  # the customer sees both promotions...
    assert [rule.applied for rule in priced.rules] == [True, True]
    _checkout(runtime, _cart("o-0", member()))  # ...another order takes the last use of AUTO5

    with pytest.raises(ConflictError, match="no uses left"), runtime.store.session() as session:
        orders.hold_promotions(session, "o-1", buyer, priced)

    assert _counters(runtime, "COUPON") == (0, D("0"))  # the coupon, reserved first, was rolled back with it
    with runtime.store.session() as session:
        assert orders.order_promotions(session, "o-1").uses == []
    placed = _checkout(runtime, request)  # priced again inside the checkout: without AUTO5
    assert [(u.template_code, u.status) for u in placed.uses] == [("COUPON", "reserved")]
    assert {r.code: r.reason for r in placed.cart.rules}["AUTO5"] == "limit_reached"


def test_a_promotion_paused_since_pricing_fails_the_checkout(runtime: Runtime) -> None:
    make_template(runtime, "COUPON", kind="fixed", params={"amount": "10"})
    make_template(runtime, "AUTO5", automatic=True, params={"amount": "5"})
    buyer = member()
    priced = _priced(runtime, _cart("o-1", buyer, issue(runtime, "COUPON", buyer)))
    with runtime.store.session() as session:
        update_template(session, "AUTO5", TemplateUpdate(status="paused"))

    with pytest.raises(ConflictError, match="paused"), runtime.store.session() as session:
        orders.hold_promotions(session, "o-1", buyer, priced)

    _nothing_held(runtime)
    assert _counters(runtime, "COUPON") == (0, D("0"))


def _concurrent_checkouts(
    runtime: Runtime, buyers: list[str], prefix: str = "o"
) -> tuple[Counter[str], list[BaseException]]:
    """Each client checks out an order with an idempotency key; on a conflict it prices again and retries."""
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(buyers))

    def client(index: int, buyer: str) -> None:
        store = OperationalStore(runtime.store.url)
        request = _cart(f"{prefix}-{index}", buyer)
        try:
            barrier.wait()
            for attempt in range(CLIENTS + 1):  # a client loses at most once per use taken by another
                try:
                    body, _ = write_once(
                        store,
                        "cart.checkout",
                        f"checkout-{index}-{attempt}",
                        request.model_dump(mode="json"),
                        lambda s: orders.checkout(runtime, s, request),
                    )
                except ConflictError:
                    with lock:
                        outcomes["conflict"] += 1
                    continue
                with lock:
                    outcomes["with" if body["uses"] else "without"] += 1
                return
            raise AssertionError(f"order {prefix}-{index} never checked out")
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            store.dispose()

    threads = [threading.Thread(target=client, args=(i, b)) for i, b in enumerate(buyers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, errors


@pytest.mark.slow
def test_the_limits_of_an_automatic_promotion_hold_under_concurrent_checkouts(runtime: Runtime) -> None:
    make_template(runtime, "AUTO5", automatic=True, params={"amount": "5"}, global_limit=10)

    outcomes, errors = _concurrent_checkouts(runtime, [member() for _ in range(CLIENTS)])

    assert errors == []
    assert (outcomes["with"], outcomes["without"]) == (10, CLIENTS - 10)  # every order placed, 10 with the promotion
    assert _counters(runtime, "AUTO5") == (10, D("50"))
    with runtime.store.session() as session:
        held = session.scalars(select(PromotionRedemption.order_reference)).all()
    assert len(held) == len(set(held)) == 10
    for index in range(4):  # four of them are cancelled: their uses come back
        with runtime.store.session() as session:
            orders.cancel_order(session, held[index])
    assert _counters(runtime, "AUTO5") == (6, D("30"))


@pytest.mark.slow
def test_the_budget_and_the_member_limit_of_an_automatic_promotion_hold_under_concurrency(runtime: Runtime) -> None:
    make_template(runtime, "BUDGET", automatic=True, params={"amount": "10"}, budget="75")
    by_budget, errors = _concurrent_checkouts(runtime, [member() for _ in range(CLIENTS)])
    assert errors == []
    assert by_budget["with"] == 8  # 7 x 10, then the 5 left
    assert _counters(runtime, "BUDGET") == (8, D("75"))

    with runtime.store.session() as session:
        update_template(session, "BUDGET", TemplateUpdate(status="paused"))
    make_template(runtime, "ONCE", automatic=True, params={"amount": "5"}, per_member_limit=2)
    buyer = member()
    by_member, errors = _concurrent_checkouts(runtime, [buyer] * CLIENTS, prefix="m")
    assert errors == []
    assert by_member["with"] == 2
    assert _member_uses(runtime, "ONCE", buyer) == 2
    assert _counters(runtime, "ONCE") == (2, D("10"))
