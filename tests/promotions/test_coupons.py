"""Templates and coupons against the real store: validation, codes, issue/reserve/redeem/release, limits.

Runs on SQLite, and on PostgreSQL when PATRON_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from patron.db.base import utcnow
from patron.errors import ConflictError, NotFoundError, ValidationError
from patron.promotions.coupons import expire_coupons, write_once
from patron.promotions.models import Coupon
from patron.promotions.schemas import CartLineIn, CartRequest, TemplateCreate, TemplateUpdate
from patron.promotions.service import (
    create_template,
    generate_codes,
    issue_coupon,
    member_coupons,
    price,
    redeem_coupon,
    release_coupon,
    reserve_coupon,
    template_stats,
    update_template,
)
from patron.promotions.templates import CODE_ALPHABET, get_template
from patron.runtime import Runtime

D = Decimal
CLIENTS = 32


def member() -> str:
    return "m" + secrets.token_hex(8)


def make_template(runtime: Runtime, code: str = "SAVE10", **fields: Any) -> None:
    data = {"code": code, "name": f"{code} off", "kind": "fixed", "params": {"amount": "10"}, **fields}
    with runtime.store.session() as session:
        create_template(session, TemplateCreate.model_validate(data), "test")


def issue(runtime: Runtime, code: str, member_key: str) -> str:
    with runtime.store.session() as session:
        return issue_coupon(session, code, member_key, "welcome").code


def test_a_template_with_bad_params_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"params\.percent"):
        TemplateCreate.model_validate({"code": "P", "name": "p", "kind": "percent", "params": {"percent": 150}})
    with pytest.raises(ValueError, match="rise strictly"):
        TemplateCreate.model_validate(
            {
                "code": "T",
                "name": "t",
                "kind": "threshold_tiers",
                "params": {"tiers": [{"threshold": 300, "discount": 40}, {"threshold": 200, "discount": 20}]},
            }
        )


def test_a_template_code_is_unique_and_an_update_is_validated_as_a_whole(runtime: Runtime) -> None:
    make_template(runtime)

    with pytest.raises(ConflictError):
        make_template(runtime)
    with runtime.store.session() as session, pytest.raises(ValidationError) as caught:
        update_template(session, "SAVE10", TemplateUpdate(params={"amount": "-1"}))
    assert caught.value.field == "params.amount"
    with runtime.store.session() as session:
        changed = update_template(session, "SAVE10", TemplateUpdate(params={"amount": "12.50"}, priority=3))
    assert (changed.params, changed.priority) == ({"amount": "12.50"}, 3)


def test_bulk_codes_are_unique_unambiguous_and_all_stored(runtime: Runtime) -> None:
    make_template(runtime)
    stages: list[int | None] = []
    steps: list[int] = []

    class Recorder:
        def stage(self, description: str, total: int | None = None) -> None:
            stages.append(total)

        def advance(self, steps_done: int = 1) -> None:
            steps.append(steps_done)

    batch = generate_codes(runtime.store, "SAVE10", 12_000, prefix="XM", progress=Recorder())

    assert batch.count == 12_000 and stages == [12_000] and sum(steps) == 12_000
    with runtime.store.session() as session:
        codes = list(session.scalars(select(Coupon.code).where(Coupon.batch == batch.batch)))
    assert len(codes) == len(set(codes)) == 12_000
    assert all(code.startswith("XM") and set(code[2:]) <= set(CODE_ALPHABET) for code in codes)
    assert not set("01ILO") & set(CODE_ALPHABET)


def test_a_coupon_is_issued_reserved_redeemed_and_counted(runtime: Runtime) -> None:
    make_template(runtime, budget="100")
    buyer = member()
    code = issue(runtime, "SAVE10", buyer)

    with runtime.store.session() as session:
        held = reserve_coupon(session, code, order_reference="o-1", discount=D("10"), member_key=buyer)
    with runtime.store.session() as session:
        paid = redeem_coupon(session, code, order_reference="o-1")
        stats = {s.code: s for s in template_stats(session)}["SAVE10"]
        mine = member_coupons(session, buyer)

    assert (held.status, held.order_reference, held.discount) == ("reserved", "o-1", D("10"))
    assert paid.status == "redeemed"
    assert (stats.issued, stats.redeemed, stats.used, stats.discount_given, stats.budget_left) == (
        1,
        1,
        1,
        D("10"),
        D("90"),
    )
    assert [c.code for c in mine] == [code]


def test_release_on_cancellation_gives_the_use_back_and_the_coupon_can_be_used_again(runtime: Runtime) -> None:
    make_template(runtime, per_member_limit=1)
    buyer = member()
    code = issue(runtime, "SAVE10", buyer)
    with runtime.store.session() as session:
        reserve_coupon(session, code, order_reference="o-1", discount=D("10"))
        redeem_coupon(session, code, order_reference="o-1")

    with runtime.store.session() as session:
        released = release_coupon(session, code, order_reference="o-1")
    with runtime.store.session() as session:
        again = reserve_coupon(session, code, order_reference="o-2", discount=D("10"))
        template = get_template(session, "SAVE10")

    assert released.status == "released" and released.order_reference is None
    assert again.status == "reserved"
    assert (template.used, template.spent) == (1, D("10"))


def test_a_used_coupon_or_someone_elses_cannot_be_reserved(runtime: Runtime) -> None:
    make_template(runtime)
    code = issue(runtime, "SAVE10", member())
    with runtime.store.session() as session:
        reserve_coupon(session, code, order_reference="o-1", discount=D("5"))

    with runtime.store.session() as session, pytest.raises(ConflictError, match="reserved"):
        reserve_coupon(session, code, order_reference="o-2", discount=D("5"))
    with runtime.store.session() as session, pytest.raises(ConflictError, match="another member"):
        reserve_coupon(session, code, order_reference="o-2", discount=D("5"), member_key=member())
    with runtime.store.session() as session, pytest.raises(ConflictError, match="another order"):
        redeem_coupon(session, code, order_reference="o-2")
    with runtime.store.session() as session, pytest.raises(NotFoundError):
        redeem_coupon(session, "NOPE", order_reference="o-2")


def test_an_ended_promotion_reads_as_expired_and_cannot_be_reserved(runtime: Runtime) -> None:
    make_template(runtime, starts_at=utcnow() - timedelta(days=2), ends_at=utcnow() - timedelta(days=1))
    buyer = member()
    code = issue(runtime, "SAVE10", buyer)

    with runtime.store.session() as session:
        assert member_coupons(session, buyer)[0].status == "expired"
    with runtime.store.session() as session, pytest.raises(ConflictError, match="ended"):
        reserve_coupon(session, code, order_reference="o-1", discount=D("5"))


def test_the_expiry_job_marks_the_unused_coupons_of_ended_promotions_expired(runtime: Runtime) -> None:
    ends = utcnow() + timedelta(days=3)
    make_template(runtime, "ENDING", ends_at=ends)
    make_template(runtime, "LASTING")
    buyer = member()
    unused, held, released, lasting = (issue(runtime, code, buyer) for code in ("ENDING",) * 3 + ("LASTING",))
    with runtime.store.session() as session:
        reserve_coupon(session, held, order_reference="o-1", discount=D("10"))
        reserve_coupon(session, released, order_reference="o-2", discount=D("10"))
        release_coupon(session, released, order_reference="o-2")
    seen: list[tuple[int, int]] = []

    assert expire_coupons(runtime.store, ends - timedelta(seconds=1)) == 0  # not ended yet
    assert expire_coupons(runtime.store, ends, lambda done, total: seen.append((done, total))) == 2
    assert expire_coupons(runtime.store, ends) == 0  # again: nothing left

    assert seen == [(1, 1)]
    with runtime.store.session() as session:
        stored = {code: status for code, status in session.execute(select(Coupon.code, Coupon.status))}
    assert (stored[unused], stored[released], stored[held], stored[lasting]) == (
        "expired",
        "expired",
        "reserved",
        "issued",
    )
    with runtime.store.session() as session, pytest.raises(ConflictError, match="expired"):
        reserve_coupon(session, unused, order_reference="o-3", discount=D("10"))


def _reserve_each(runtime: Runtime, codes: list[str], discount: str = "10") -> list[str]:
    def attempt(pair: tuple[int, str]) -> str:
        index, code = pair
        try:
            with runtime.store.session() as session:
                reserve_coupon(session, code, order_reference=f"o-{index}", discount=D(discount))
            return "ok"
        except ConflictError as exc:
            return str(exc)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(attempt, enumerate(codes)))


def test_the_global_limit_holds_under_concurrent_reservations(runtime: Runtime) -> None:
    make_template(runtime, global_limit=10)
    codes = [issue(runtime, "SAVE10", member()) for _ in range(CLIENTS)]

    results = _reserve_each(runtime, codes)

    assert results.count("ok") == 10
    assert all("no uses left" in r for r in results if r != "ok")
    with runtime.store.session() as session:
        assert get_template(session, "SAVE10").used == 10
        reserved = session.scalar(select(func.count()).select_from(Coupon).where(Coupon.status == "reserved"))
    assert reserved == 10


def test_the_budget_and_the_per_member_limit_hold_under_concurrency(runtime: Runtime) -> None:
    make_template(runtime, "BUDGET", budget="75")
    make_template(runtime, "ONCE", per_member_limit=2)
    budget_codes = [issue(runtime, "BUDGET", member()) for _ in range(CLIENTS)]
    buyer = member()
    once_codes = [issue(runtime, "ONCE", buyer) for _ in range(CLIENTS)]

    by_budget = _reserve_each(runtime, budget_codes)
    by_member = _reserve_each(runtime, once_codes)

    assert by_budget.count("ok") == 7  # 7 x 10 <= 75
    assert by_member.count("ok") == 2
    with runtime.store.session() as session:
        assert get_template(session, "BUDGET").spent == D("70")


def test_idempotent_writes_replay_the_first_result_and_refuse_a_different_request(runtime: Runtime) -> None:
    make_template(runtime)
    code = issue(runtime, "SAVE10", member())
    request = {"code": code, "order_reference": "o-1", "discount": "10"}

    def reserve(ref: str) -> Any:
        return lambda s: reserve_coupon(s, code, order_reference=ref, discount=D("10"))

    first, replayed_first = write_once(runtime.store, "coupon.reserve", "k-1", request, reserve("o-1"))
    again, replayed = write_once(runtime.store, "coupon.reserve", "k-1", request, reserve("o-1"))

    assert (replayed_first, replayed) == (False, True)
    assert again == first
    with pytest.raises(ConflictError):
        write_once(runtime.store, "coupon.reserve", "k-1", {**request, "order_reference": "o-2"}, reserve("o-2"))


def test_pricing_through_the_store_uses_coupons_and_automatic_promotions(runtime: Runtime) -> None:
    make_template(runtime, "AUTO5", automatic=True, params={"amount": "5"})
    make_template(runtime, "COUPON", kind="percent", params={"percent": "10"})
    buyer = member()
    code = issue(runtime, "COUPON", buyer)
    cart = CartRequest(
        lines=[CartLineIn(line_id="1", product="p1", unit_price=D("50"), quantity=2)],
        member_key=buyer,
        segment="champions",
        tier="gold",
        coupons=[code, "UNKNOWN1"],
    )

    with runtime.store.session() as session:
        priced = price(runtime, session, cart)

    outcomes = {r.code: r for r in priced.rules}
    assert outcomes["AUTO5"].applied and outcomes["COUPON"].applied
    assert outcomes["UNKNOWN1"].reason == "coupon_unavailable"
    assert priced.total == D("85.50")  # 100 - 5, then 10% of 95
    assert (priced.segment, priced.tier) == ("champions", "gold")
