"""`patron promotions`: Coupons, promotions, cart pricing and the rewards catalog."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patron.audit.service import record
from patron.cli.common import err_console, fail_on_error, open_runtime, print_json

__all__ = ["app", "rewards", "templates"]

console = Console()
app = typer.Typer(help="Coupons, promotions, cart pricing and the rewards catalog.", no_args_is_help=True)
templates = typer.Typer(help="Promotion templates.", no_args_is_help=True)
rewards = typer.Typer(help="The rewards catalog (points for coupons or gifts).", no_args_is_help=True)
app.add_typer(templates, name="templates")
app.add_typer(rewards, name="rewards")

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Many = Annotated[list[str] | None, typer.Option(help="Repeat for several values.")]


@app.callback()
def promotions() -> None:
    """Coupons, promotions, cart pricing and the rewards catalog."""


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _validated(model: Any, fields: dict[str, Any]) -> Any:
    from pydantic import ValidationError as PydanticError

    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except PydanticError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        err_console.print(f"[red]error ({'.'.join(map(str, first['loc']))}):[/red] {escape(message)}")
        raise typer.Exit(1) from None


@templates.command("list")
def list_command(json_out: JsonOut = False) -> None:
    """Every template with its kind, window, limits and counters."""
    from patron.promotions.templates import list_templates

    with fail_on_error(), open_runtime().store.session() as session:
        found = list_templates(session)
    if json_out:
        print_json([t.model_dump(mode="json") for t in found])
        return
    table = Table("code", "name", "kind", "params", "auto", "priority", "used", "spent", "status", title="Promotions")
    for t in found:
        table.add_row(
            escape(t.code),
            escape(t.name),
            t.kind,
            escape(json.dumps(t.params, ensure_ascii=False)),
            "yes" if t.automatic else "no",
            str(t.priority),
            f"{t.used}" + (f"/{t.global_limit}" if t.global_limit else ""),
            f"{t.spent}" + (f"/{t.budget}" if t.budget is not None else ""),
            t.status,
        )
    console.print(table if found else "no promotion templates yet: `patron promotions templates add --help`")


@templates.command("add")
def add(
    code: Annotated[str, typer.Option(help="A unique code, e.g. DOUBLE11.")],
    name: Annotated[str, typer.Option(help="A name shown to operators and members.")],
    kind: Annotated[str, typer.Option(help="fixed, percent, threshold_tiers, free_shipping or gift.")],
    params: Annotated[
        str,
        typer.Option(
            help='The kind\'s parameters as JSON: {"amount": "10"}, {"percent": 15, "cap": 30}, '
            '{"tiers": [{"threshold": 200, "discount": 20}, {"threshold": 300, "discount": 40}]}, '
            '{"max_shipping": 12}, {"product": "SKU", "quantity": 1}.'
        ),
    ] = "{}",
    automatic: Annotated[bool, typer.Option("--automatic", help="Applies without a coupon code.")] = False,
    min_spend: Annotated[str | None, typer.Option(help="Least eligible spend, e.g. 99.00.")] = None,
    segment: Many = None,
    tier: Many = None,
    category: Many = None,
    brand: Many = None,
    product: Many = None,
    starts_at: Annotated[datetime | None, typer.Option(help="Start (UTC unless an offset is given).")] = None,
    ends_at: Annotated[datetime | None, typer.Option(help="End, exclusive.")] = None,
    global_limit: Annotated[int | None, typer.Option(help="Most uses across all members.")] = None,
    per_member_limit: Annotated[int | None, typer.Option(help="Most uses per member.")] = None,
    budget: Annotated[str | None, typer.Option(help="Most discount to give in total.")] = None,
    stack_group: Annotated[str | None, typer.Option(help="Exclusive promotions of one group compete.")] = None,
    exclusive: Annotated[
        bool, typer.Option("--exclusive", help="Only the best of its stacking group applies.")
    ] = False,
    priority: Annotated[int, typer.Option(help="Higher applies first.")] = 0,
    json_out: JsonOut = False,
) -> None:
    """Create a promotion template."""
    from patron.promotions.schemas import TemplateCreate
    from patron.promotions.templates import create_template

    try:
        parsed_params = json.loads(params)
    except json.JSONDecodeError as exc:
        err_console.print(f"[red]error (params):[/red] not JSON: {exc}")
        raise typer.Exit(1) from None
    fields = {
        "code": code,
        "name": name,
        "kind": kind,
        "params": parsed_params,
        "automatic": automatic,
        "min_spend": min_spend,
        "segments": segment,
        "tiers": tier,
        "categories": category,
        "brands": brand,
        "products": product,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "global_limit": global_limit,
        "per_member_limit": per_member_limit,
        "budget": budget,
        "stack_group": stack_group,
        "exclusive": exclusive,
        "priority": priority,
    }
    data = _validated(TemplateCreate, fields)
    with fail_on_error():
        runtime = open_runtime()
        with runtime.store.session() as session:
            created = create_template(session, data, _actor())
        record(runtime.store, _actor(), "promotion.create", f"promotion:{created.code}", details={"kind": created.kind})
    if json_out:
        print_json(created.model_dump(mode="json"))
        return
    console.print(f"promotion [bold]{escape(created.code)}[/bold] ({created.kind}) created")


@app.command("codes")
def codes(
    template: Annotated[str, typer.Argument(help="The template's code.")],
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many codes (up to 100,000).")],
    prefix: Annotated[str, typer.Option(help="Up to 8 capitals or digits before each code.")] = "",
    output: Annotated[Path | None, typer.Option(help="Write every code of the batch to this file.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Generate unique coupon codes of a template in bulk (with progress)."""
    from sqlalchemy import select

    from patron.cli.progress import RichProgress
    from patron.promotions.models import Coupon
    from patron.promotions.schemas import CodesRequest
    from patron.promotions.templates import generate_codes

    request = _validated(CodesRequest, {"count": count, "prefix": prefix})
    with fail_on_error():
        runtime = open_runtime()
        with RichProgress(err_console, enabled=not json_out) as progress:
            batch = generate_codes(runtime.store, template, request.count, prefix=request.prefix, progress=progress)
        record(runtime.store, _actor(), "promotion.codes", f"promotion:{template}", details={"count": batch.count})
        if output is not None:
            with runtime.store.session() as session:
                every = session.scalars(select(Coupon.code).where(Coupon.batch == batch.batch).order_by(Coupon.id))
                output.write_text("".join(f"{code}\n" for code in every))
    if json_out:
        print_json(batch.model_dump(mode="json"))
        return
    console.print(f"{batch.count:,} codes for {escape(template)} (batch {batch.batch})")


@app.command("issue")
def issue(
    template: Annotated[str, typer.Argument(help="The template's code.")],
    member_key: Annotated[str, typer.Argument(help="The member's key (m + 16 hex digits).")],
    reason: Annotated[str, typer.Option(help="Why the member gets it.")] = "",
    json_out: JsonOut = False,
) -> None:
    """Issue a coupon of a template to a member."""
    from patron.promotions.coupons import issue_coupon
    from patron.promotions.schemas import IssueRequest

    request = _validated(IssueRequest, {"template_code": template, "member_key": member_key, "reason": reason})
    with fail_on_error():
        runtime = open_runtime()
        with runtime.store.session() as session:
            coupon = issue_coupon(session, request.template_code, request.member_key, request.reason)
        record(runtime.store, _actor(), "coupon.issue", f"coupon:{coupon.code}", details={"member_key": member_key})
    if json_out:
        print_json(coupon.model_dump(mode="json"))
        return
    console.print(f"coupon [bold]{coupon.code}[/bold] of {escape(template)} issued to {member_key}")


@app.command("price")
def price_command(
    cart: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A cart as JSON (see /carts/price).")],
    json_out: JsonOut = False,
) -> None:
    """Price a cart file: line discounts and, for each promotion, whether it applied and why."""
    from patron.promotions.schemas import CartRequest
    from patron.promotions.service import price

    try:
        raw = json.loads(cart.read_text())
    except json.JSONDecodeError as exc:
        err_console.print(f"[red]error ({cart.name}):[/red] not JSON: {exc}")
        raise typer.Exit(1) from None
    request = _validated(CartRequest, raw)
    with fail_on_error():
        runtime = open_runtime()
        with runtime.store.session() as session:
            priced = price(runtime, session, request)
    if json_out:
        print_json(priced.model_dump(mode="json"))
        return
    lines = Table("line", "product", "qty", "amount", "discount", "total", title="Cart")
    for line in priced.lines:
        lines.add_row(
            line.line_id,
            escape(line.product),
            str(line.quantity),
            str(line.amount),
            str(line.discount),
            str(line.total),
        )
    rules = Table("promotion", "coupon", "applied", "amount", "why", title="Promotions")
    for rule in priced.rules:
        why = rule.message if rule.applied else f"{rule.reason}: {rule.message}"
        rules.add_row(
            escape(rule.code), rule.coupon_code or "", "yes" if rule.applied else "no", str(rule.amount), escape(why)
        )
    console.print(lines, rules)
    console.print(
        f"subtotal {priced.subtotal}  discount {priced.discount}  shipping {priced.shipping_fee}"
        f" - {priced.shipping_discount}  [bold]total {priced.total}[/bold]"
    )


@app.command("stats")
def stats(json_out: JsonOut = False) -> None:
    """Per template: coupons issued, reserved, redeemed, released; discount given; budget left."""
    from patron.promotions.templates import template_stats

    with fail_on_error(), open_runtime().store.session() as session:
        found = template_stats(session)
    if json_out:
        print_json([s.model_dump(mode="json") for s in found])
        return
    table = Table("code", "issued", "reserved", "redeemed", "released", "discount given", "budget left", title="Usage")
    for s in found:
        left = "—" if s.budget_left is None else str(s.budget_left)
        table.add_row(
            escape(s.code),
            *(str(n) for n in (s.issued, s.reserved, s.redeemed, s.released)),
            str(s.discount_given),
            left,
        )
    console.print(table)


@app.command("expire-coupons")
def expire_coupons_command(
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="Judge which promotions have ended at this moment (ISO 8601).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Mark the unused coupons of promotions that have ended as expired (also the `coupon-expiry` job)."""
    from patron.cli.progress import RichProgress
    from patron.db.base import utcnow
    from patron.promotions.coupons import expire_coupons

    with fail_on_error():
        runtime = open_runtime()
        moment = as_of or utcnow()
        with RichProgress(console, enabled=not json_out) as bar:

            def progress(done: int, total: int) -> None:
                if done == 1:
                    bar.stage("expiring coupons", total)
                bar.advance()

            expired = expire_coupons(runtime.store, moment, progress)
        record(
            runtime.store, _actor(), "coupon.expire", None, details={"coupons": expired, "as_of": moment.isoformat()}
        )
    if json_out:
        print_json({"job": "coupon-expiry", "as_of": moment.isoformat(), "coupons": expired})
        return
    console.print(f"coupon-expiry: {expired:,} coupons expired as of {moment.isoformat(timespec='seconds')}")


@rewards.command("list")
def rewards_list(json_out: JsonOut = False) -> None:
    """The catalog with cost, stock and exchanges."""
    from patron.promotions.rewards import list_rewards

    with fail_on_error(), open_runtime().store.session() as session:
        found = list_rewards(session)
    if json_out:
        print_json([r.model_dump(mode="json") for r in found])
        return
    table = Table("id", "name", "kind", "points", "template", "stock", "exchanged", "active", title="Rewards")
    for r in found:
        stock = "∞" if r.stock is None else str(r.stock)
        table.add_row(
            str(r.id),
            escape(r.name),
            r.kind,
            str(r.points_cost),
            r.template_code or "",
            stock,
            str(r.exchanged),
            "yes" if r.active else "no",
        )
    console.print(table if found else "no rewards yet: `patron promotions rewards add --help`")


@rewards.command("add")
def rewards_add(
    name: Annotated[str, typer.Option(help="A unique name.")],
    kind: Annotated[str, typer.Option(help="coupon or gift.")],
    points: Annotated[int, typer.Option(help="Points it costs.")],
    template: Annotated[str | None, typer.Option(help="coupon: the template its coupons come from.")] = None,
    stock: Annotated[int | None, typer.Option(help="How many there are (unlimited when not given).")] = None,
    per_member_limit: Annotated[int | None, typer.Option(help="Most exchanges per member.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Add a reward to the catalog."""
    from patron.promotions.rewards import create_reward
    from patron.promotions.schemas import RewardCreate

    fields = {"name": name, "kind": kind, "points_cost": points, "template_code": template, "stock": stock}
    data = _validated(RewardCreate, {**fields, "per_member_limit": per_member_limit})
    with fail_on_error():
        runtime = open_runtime()
        with runtime.store.session() as session:
            created = create_reward(session, data, _actor())
        record(runtime.store, _actor(), "reward.create", f"reward:{created.id}", details={"name": created.name})
    if json_out:
        print_json(created.model_dump(mode="json"))
        return
    console.print(f"reward {created.id} [bold]{escape(created.name)}[/bold] for {created.points_cost} points")
