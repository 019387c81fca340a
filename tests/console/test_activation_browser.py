"""Loyalty, promotions and recommendations in Chromium.

The journey the loyalty issue asks for: an operator issues a coupon to a
member on the member page, opens it in a cart, prices the cart (the coupon
applies, the spend-more promotion says how much more is needed) and redeems
it; the member page and the promotions statistics then show it redeemed.
The recommendations pages show a trained version, its placement and an
item's similar items, equal to what the engine computes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from patron.analytics.artefacts import reader_for
from patron.auth.schemas import OperatorCreate
from patron.auth.service import create_operator
from patron.console.i18n import Translator
from patron.loyalty.earning import OrderIn, OrderLineIn
from patron.loyalty.program import record_order
from patron.loyalty.program_rules import EarningRuleCreate, create_rule
from patron.loyalty.tiers import TierCreate, create_tier
from patron.promotions.schemas import TemplateCreate
from patron.promotions.templates import create_template
from patron.recs import registry
from patron.recs.registry import VariantIn
from patron.recs.rules import RecRequest
from patron.recs.service import configure, engine_for
from patron.runtime import Runtime
from tests.conftest import make_settings
from tests.console.browsing import sign_in
from tests.console.conftest import PASSWORD, ROLE_OPERATORS, Shots, _serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenPage = Callable[..., Page]
EN, ZH = Translator("en"), Translator("zh-CN")
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def activation(built_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The online-retail build with a trained recommendation version, placements, a tier, rules and coupons."""
    home = tmp_path_factory.mktemp("activation") / "home"
    home.mkdir(parents=True)
    warehouse = built_runtime.settings.warehouse_location
    rt = Runtime(make_settings(home, warehouse_url=warehouse))
    rt.store.migrate()
    shutil.copytree(built_runtime.settings.artefact_dir, rt.settings.artefact_dir)
    for username, role in ROLE_OPERATORS.items():
        create_operator(rt.store, OperatorCreate(username=username, password=PASSWORD, role=role))
    version = registry.train(rt, "itemknn", {}, "test")
    configure(rt.store, "home", [VariantIn(name="a", version_id=version.id, share_bp=10_000)], "test", "member")
    configure(rt.store, "pdp", [VariantIn(name="a", version_id=version.id, share_bp=10_000)], "test", "similar")
    create_tier(rt.store, TierCreate(code="silver", name="Silver", threshold=Decimal(0)))
    create_tier(rt.store, TierCreate(code="gold", name="Gold", threshold=Decimal(5000), multiplier=Decimal(2)))
    create_rule(rt.store, EarningRuleCreate(name="1 point per unit", kind="base", points_per_unit=Decimal(1)), "test")
    with rt.store.session() as session:
        create_template(
            session,
            TemplateCreate(
                code="WELCOME10", name="Welcome 10 off", kind="fixed", params={"amount": "10"}, min_spend=Decimal(50)
            ),
            "test",
        )
        create_template(
            session,
            TemplateCreate(
                code="MJ200",
                name="Spend 200 save 20",
                kind="threshold_tiers",
                params={"tiers": [{"threshold": "200", "discount": "20"}, {"threshold": "300", "discount": "40"}]},
                automatic=True,
                stack_group="store",
            ),
            "test",
        )
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def activation_server(activation: Runtime, vendor_assets: None) -> Iterator[str]:
    with _serve(activation) as url:
        yield url


def _member(runtime: Runtime) -> str:
    profiles = reader_for(runtime.settings.artefact_dir).table("profiles")
    rows = profiles.filter(profiles.frequency >= 5).order_by("member_key").limit(1).to_pyarrow().to_pylist()
    return str(rows[0]["member_key"])


def test_issue_a_coupon_price_a_cart_and_redeem_it(
    activation: Runtime, activation_server: str, page_factory: OpenPage, shots: Shots
) -> None:
    member = _member(activation)
    order = OrderIn(
        order_key=f"o-{member}",
        member_key=member,
        paid_at=datetime.now(UTC) - timedelta(days=1),
        lines=[OrderLineIn(sku="85123A", amount=Decimal("123.40"))],
    )
    record_order(activation.store, order, f"idem-{member}", "test")
    page = page_factory(base_url=activation_server)
    problems = sign_in(page, f"/members/{member}", "marketer")

    panel = page.locator("[data-section=loyalty]")
    expect(panel.locator("[data-field=points_pending] dd")).to_have_text("123")
    expect(panel.locator("[data-tier=silver]")).to_have_text("Silver")
    recs = page.locator("[data-section=recs] [data-rec]")
    expect(recs).to_have_count(10)
    shots.take(page, "member-loyalty")

    page.select_option("[data-form=issue-coupon] select[name=template]", "WELCOME10")
    page.fill("[data-form=issue-coupon] input[name=reason]", "apology")
    page.click("[data-action=issue-coupon]")
    coupon = page.locator("[data-coupon-status=issued]")
    expect(coupon).to_have_count(1)
    code = coupon.get_attribute("data-coupon")
    assert code
    expect(page.locator("[data-alert=member]")).to_contain_text(code)

    page.click(f"[data-use-coupon='{code}']")
    page.wait_for_url("**/promotions/cart?**")
    expect(page.locator("input[name=coupon]")).to_have_value(code)
    page.fill("input[name=product_0]", "85123A")
    page.fill("input[name=category_0]", "home")
    page.fill("input[name=price_0]", "30")
    page.fill("input[name=qty_0]", "2")
    page.fill("input[name=product_1]", "22423")
    page.fill("input[name=price_1]", "45.5")
    page.fill("input[name=qty_1]", "1")
    page.click("[data-action=price-cart]")

    welcome = page.locator("[data-rule=WELCOME10]")
    expect(welcome).to_have_attribute("data-applied", "yes")
    spend_more = page.locator("[data-rule=MJ200]")
    expect(spend_more).to_have_attribute("data-applied", "no")
    expect(spend_more).to_have_attribute("data-rule-reason", "below_min_spend")
    expect(spend_more).to_contain_text("spend 94.50 more to save 20")
    expect(page.locator("[data-total=subtotal]")).to_have_text("105.50")
    expect(page.locator("[data-total=total]")).to_have_text("95.50")
    discounts = [Decimal(t) for t in page.locator("[data-line-discount]").all_inner_texts()]
    assert sum(discounts) == Decimal("10.00")
    assert discounts == [Decimal("5.69"), Decimal("4.31")]  # 60 : 45.50 of 10.00, remainder cents by size
    shots.take(page, "cart-priced")

    page.click("[data-action=redeem-coupon]")
    expect(page.locator("[data-alert=cart]")).to_contain_text(code)
    page.goto(f"/members/{member}")
    expect(page.locator(f"[data-coupon='{code}']")).to_have_attribute("data-coupon-status", "redeemed")
    page.goto("/promotions")
    row = page.locator("[data-template-row=WELCOME10]")
    expect(row.locator("[data-stat=issued]")).to_have_text("1")
    expect(row.locator("[data-stat=redeemed]")).to_have_text("1")
    expect(row.locator("[data-stat=discount]")).to_have_text("10.00")
    page.click("[data-lang=zh-CN]")
    expect(page.locator("h1")).to_have_text(ZH("promotions.title"))
    expect(row.locator("td").first).to_have_text(ZH("promotions.kind.fixed"))
    shots.take(page, "promotions-zh")
    assert problems == []


def test_models_page_and_item_page_show_the_trained_version(
    activation: Runtime, activation_server: str, page_factory: OpenPage, shots: Shots
) -> None:
    version = registry.list_versions(activation.store)[0]
    assert version.directory
    engine = engine_for(activation.store, version.id, version.directory)
    item = str(engine.model.item_ids[int(engine.model.history_matrix.getnnz(axis=0).argmax())])
    expected = [r.item_id for r in engine.similar(item, RecRequest(k=10)).items]
    page = page_factory(base_url=activation_server)
    problems = sign_in(page, "/recs", "analyst")

    expect(page.locator(f"[data-version-row='{version.id}']")).to_contain_text("itemknn")
    expect(page.locator("[data-placement=home] [data-variant=a]")).to_have_attribute("data-share", "10000")
    shots.take(page, "recs")
    page.goto(f"/recs/items/{item}")
    expect(page.locator("[data-list=similar] [data-item]")).to_have_count(len(expected))
    assert (
        page.locator("[data-list=similar] [data-item]").evaluate_all("els => els.map(e => e.dataset.item)") == expected
    )
    shots.take(page, "recs-item")
    assert problems == []
    missing = page.goto("/recs/items/no-such-item")
    assert missing is not None and missing.status == 404
