"""``tollway admin voucher ...``: compensation vouchers (audited) and the expiry sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tollway.cli.dates import parse_expiry
from tollway.cli.options import JsonFlag
from tollway.cli.output import record_renderer, rows_renderer
from tollway.cli.payments_runtime import run_payments

if TYPE_CHECKING:
    from tollway.payments.context import PaymentsContext

voucher_app = typer.Typer(help="Vouchers: grant (compensation), list, sweep expired.", no_args_is_help=True)
GRANT_COLUMNS = ("grant", "granted", "spent", "remaining", "expired_amount", "expires_at", "state", "reason")


@voucher_app.command("grant")
def voucher_grant(
    account_id: Annotated[str, typer.Argument(help="Account UUID.")],
    amount: Annotated[str, typer.Argument(help="Credits, a decimal string.")],
    expires: Annotated[str, typer.Option("--expires", help="YYYY-MM-DD (end of day, UTC) or ISO-8601.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; shown to the customer and audited.")],
    order: Annotated[str | None, typer.Option("--order", help="Link to an order number.")] = None,
    trace: Annotated[str | None, typer.Option("--trace", help="Link to a call's trace ID.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Grant a compensation voucher."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.vouchers import VoucherService

        return await VoucherService(ctx, actor).grant(
            account_id,
            amount,
            expires=parse_expiry(expires),
            reason=reason,
            order_number=order,
            trace_id=trace,
        )

    def render(console: Any, doc: Any) -> None:
        shown = {k: v for k, v in doc.items() if k != "vouchers" and not k.endswith("_nano")}
        record_renderer("voucher granted")(console, shown)

    run_payments(json_out, action, render)


@voucher_app.command("list")
def voucher_list(
    account_id: Annotated[str, typer.Argument(help="Account UUID.")], json_out: JsonFlag = False
) -> None:
    """An account's grants: granted, spent, remaining, expiry."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.vouchers import VoucherService

        return {
            "account_id": account_id,
            "vouchers": await VoucherService(ctx, actor).list_grants(account_id),
        }

    run_payments(json_out, action, rows_renderer("vouchers", GRANT_COLUMNS, empty="no vouchers"))


@voucher_app.command("expire")
def voucher_expire(json_out: JsonFlag = False) -> None:
    """Move expired voucher remainders to breakage now (the server does this every interval)."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.vouchers import VoucherService

        return {"expired_grants": await VoucherService(ctx, actor).sweep()}

    run_payments(json_out, action, record_renderer("voucher expiry"))
