"""``tollway admin order ...``: create, show, list, credit by hand, ask the provider."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tollway.cli.options import JsonFlag
from tollway.cli.output import render_record, render_rows, rows_renderer
from tollway.cli.payments_runtime import run_payments

if TYPE_CHECKING:
    from tollway.payments.context import PaymentsContext

order_app = typer.Typer(help="Top-up orders: create, show, list, credit by hand.", no_args_is_help=True)

ORDER_FIELDS = (
    "order_number",
    "account_id",
    "provider",
    "method",
    "state",
    "amount",
    "currency",
    "price_per_credit",
    "fx_rate",
    "credits",
    "pay_url",
    "qr_code",
    "provider_ref",
    "failure_reason",
    "created_at",
    "expires_at",
    "credited_at",
)
ORDER_COLUMNS = (
    "order_number",
    "account_id",
    "provider",
    "state",
    "amount",
    "currency",
    "credits",
    "created_at",
)
OrderNumber = Annotated[str, typer.Argument(help="The order number (TW…).")]


class Provider(StrEnum):
    stripe = "stripe"
    alipay = "alipay"
    epay = "epay"
    manual = "manual"


def render_order(console: Console, doc: Any) -> None:
    render_record(
        console, {k: doc.get(k) for k in ORDER_FIELDS if k in doc}, title=f"order {doc['order_number']}"
    )
    if doc.get("events"):
        console.print()
        render_rows(console, doc["events"], ("at", "kind", "source", "actor", "detail"), title="history")
    if doc.get("refunds"):
        console.print()
        columns = ("id", "state", "amount", "currency", "credits", "destination", "failure_reason")
        render_rows(console, doc["refunds"], columns, title="refunds")


@order_app.command("create")
def order_create(
    account_id: Annotated[str, typer.Argument(help="Account UUID.")],
    provider: Annotated[Provider, typer.Option("--provider", help="Payment provider.")],
    amount: Annotated[str, typer.Option("--amount", help="In the payment currency, e.g. 10.00.")],
    currency: Annotated[str, typer.Option("--currency", help="USD, CNY, ...")] = "USD",
    method: Annotated[str | None, typer.Option(help="alipay: page|qr; epay: alipay|wxpay|qqpay.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Create an order for an account; prints the order number, pay URL and credits."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.orders import OrderService

        return await OrderService(ctx, actor).create(
            account_id, provider=provider.value, amount=amount, currency=currency, method=method, staff=True
        )

    run_payments(json_out, action, render_order)


@order_app.command("show")
def order_show(order_number: OrderNumber, json_out: JsonFlag = False) -> None:
    """An order with its history (notifications, refusals, state changes) and refunds."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.orders import OrderService

        return await OrderService(ctx, actor).show(order_number)

    run_payments(json_out, action, render_order)


@order_app.command("list")
def order_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="created, pending, credited, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    json_out: JsonFlag = False,
) -> None:
    """Orders, newest first."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.orders import OrderService

        orders = await OrderService(ctx, actor).list_orders(account_id=account, state=state, limit=limit)
        return {"orders": orders}

    run_payments(json_out, action, rows_renderer("orders", ORDER_COLUMNS, empty="no orders"))


@order_app.command("credit")
def order_credit(
    order_number: OrderNumber,
    reason: Annotated[str, typer.Option("--reason", help="Why (investigation result); audited.")],
    json_out: JsonFlag = False,
) -> None:
    """Credit an order by hand after investigating it (exactly once; audited)."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.crediting import Crediting

        return await Crediting(ctx, actor).credit_manually(order_number, reason=reason)

    run_payments(json_out, action, lambda console, doc: render_record(console, doc, title="order credited"))


@order_app.command("refresh")
def order_refresh(order_number: OrderNumber, json_out: JsonFlag = False) -> None:
    """Ask the provider about an order now; credit it if it was paid."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.notify import NotifyService

        return await NotifyService(ctx).confirm(order_number, source="staff")

    run_payments(json_out, action, render_order)
