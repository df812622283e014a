"""``tollway admin refund ...``: the refunds queue and staff decisions (audited)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tollway.cli.options import JsonFlag
from tollway.cli.output import render_record, render_rows
from tollway.cli.payments_runtime import run_payments

if TYPE_CHECKING:
    from tollway.payments.context import PaymentsContext

refund_app = typer.Typer(help="Refunds: list requests, approve, reject.", no_args_is_help=True)
REQUEST_COLUMNS = ("id", "account_id", "state", "amount", "refundable_now", "reason", "created_at")
REFUND_COLUMNS = (
    "id",
    "order_number",
    "provider",
    "state",
    "amount",
    "currency",
    "credits",
    "failure_reason",
)
RequestId = Annotated[str, typer.Argument(help="Refund request id.")]


def render_request(console: Console, doc: Any) -> None:
    render_record(
        console, {k: v for k, v in doc.items() if k != "refunds"}, title=f"refund request {doc['id']}"
    )
    if doc["refunds"]:
        console.print()
        render_rows(console, doc["refunds"], REFUND_COLUMNS, title="refunds")


@refund_app.command("list")
def refund_list(
    state: Annotated[
        str | None, typer.Option("--state", help="requested, processing, completed, ...")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Refund requests, newest first (``--state requested`` is the queue)."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.refunds import RefundService

        return {"refunds": await RefundService(ctx, actor).list_requests(account_id=account, state=state)}

    def render(console: Console, doc: Any) -> None:
        render_rows(console, doc["refunds"], REQUEST_COLUMNS, empty="no refund requests")

    run_payments(json_out, action, render)


@refund_app.command("request")
def refund_request(
    account_id: Annotated[str, typer.Argument(help="Account UUID.")],
    reason: Annotated[str, typer.Option("--reason", help="The customer's reason.")],
    amount: Annotated[str | None, typer.Option("--amount", help="Credits; default all refundable.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Open a refund request on a customer's behalf."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.refunds import RefundService

        return await RefundService(ctx, actor).request(account_id, reason=reason, amount=amount)

    run_payments(json_out, action, render_request)


@refund_app.command("approve")
def refund_approve(
    request_id: RequestId,
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the audit log.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Approve: refund each payment (newest first) through its provider."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.refunds import RefundService

        return await RefundService(ctx, actor).approve(request_id, reason=reason)

    run_payments(json_out, action, render_request)


@refund_app.command("reject")
def refund_reject(
    request_id: RequestId,
    reason: Annotated[str, typer.Option("--reason", help="Shown to the customer; audited.")],
    json_out: JsonFlag = False,
) -> None:
    """Reject a refund request."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.refunds import RefundService

        return await RefundService(ctx, actor).reject(request_id, reason=reason)

    run_payments(json_out, action, render_request)


@refund_app.command("resolve")
def refund_resolve(
    refund_id: Annotated[str, typer.Argument(help="Refund id (one payment's refund).")],
    outcome: Annotated[str, typer.Option("--outcome", help="succeeded or failed.")],
    reason: Annotated[str, typer.Option("--reason", help="What was checked; audited.")],
    json_out: JsonFlag = False,
) -> None:
    """Settle a refund whose outcome the provider cannot report (e.g. EPay)."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.refunds import RefundService

        return await RefundService(ctx, actor).resolve(refund_id, outcome=outcome, reason=reason)

    run_payments(json_out, action, lambda console, doc: render_record(console, doc, title="refund"))
