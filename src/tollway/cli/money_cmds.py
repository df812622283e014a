"""``tollway admin credit|balance|usage``: staff credits, balances, usage records."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from tollway.cli.dates import parse_optional_expiry
from tollway.cli.options import JsonFlag
from tollway.cli.output import record_renderer, render_narrow_rows, render_record, render_rows
from tollway.cli.runtime import run_admin
from tollway.money import nano_to_credits

if TYPE_CHECKING:
    from tollway.services.admin import AdminService

# Most important first: at a narrow width the right-hand ones are left out (never the trace id;
# a model name may be cut, an amount never).
USAGE_COLUMNS = (
    "trace_id",
    ("time", "time (UTC)"),
    "deduction",
    ("model_billed", "model"),
    "status",
    ("tokens.input", "in"),
    ("tokens.cache_read", "cached"),
    ("tokens.output", "out"),
)
VOUCHER_COLUMNS = ("grant", "remaining", "expires_at", "expired", "reason")


class CreditKind(StrEnum):
    cash = "cash"
    voucher = "voucher"


def credit(
    account_id: Annotated[str, typer.Argument(help="Account UUID.")],
    amount: Annotated[str, typer.Argument(help="Credits, a decimal string (e.g. 10.5).")],
    kind: Annotated[CreditKind, typer.Option("--kind", help="cash (refundable) or voucher.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded in the audit log.")],
    expires: Annotated[
        str | None,
        typer.Option(help="Voucher expiry: YYYY-MM-DD (end of that day, UTC) or ISO-8601."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Repeat-safe key: the same key credits only once."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Credit an account with cash or a voucher grant."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.credit(
            account_id,
            amount,
            kind=kind.value,
            reason=reason,
            expires=parse_optional_expiry(expires),
            idempotency_key=None if idempotency_key is None else f"staff:{idempotency_key}",
        )

    run_admin(json_out, action, _render_balance)


def balance(
    account_id: Annotated[str, typer.Argument(help="Account UUID.")],
    json_out: JsonFlag = False,
) -> None:
    """Show an account's balance: cash, vouchers, holds, available."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.balance(account_id)

    run_admin(json_out, action, _render_balance)


def _render_balance(console: Console, doc: Any) -> None:
    shown = {k: v for k, v in doc.items() if k != "vouchers" and not k.endswith("_nano")}
    if "amount_nano" in doc:  # a credit: say how much was added
        shown = {"credited": nano_to_credits(doc["amount_nano"]), **shown}
    render_record(console, shown, title="balance (credits)")
    if doc.get("vouchers"):
        console.print()
        render_rows(console, doc["vouchers"], VOUCHER_COLUMNS, title="voucher grants")


def usage(
    account_id: Annotated[str | None, typer.Argument(help="Account UUID (omit with --trace).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest N records.")] = 50,
    trace: Annotated[str | None, typer.Option("--trace", help="One record by trace ID.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """An account's newest usage records, or one record by trace ID."""
    if (account_id is None) == (trace is None):
        raise typer.BadParameter("give either ACCOUNT_ID or --trace ID", param_hint="usage")
    if trace is not None:

        async def one(svc: AdminService) -> dict[str, Any]:
            return await svc.get_usage(trace)

        run_admin(json_out, one, _render_record_detail)
        return
    assert account_id is not None

    async def many(svc: AdminService) -> dict[str, Any]:
        return {"account_id": account_id, "usage": await svc.list_usage(account_id, limit=limit)}

    run_admin(json_out, many, render_usage_rows)


def render_usage_rows(console: Console, doc: Any) -> None:
    """The usage list, fitted to the terminal (``tollway admin usage`` at 80 columns)."""
    rows = [{**r, "time": str(r.get("created_at") or "")[:19].replace("T", " ")} for r in doc["usage"]]
    cut = {"model_billed", "status"}
    render_narrow_rows(console, rows, USAGE_COLUMNS, may_cut=cut, empty="no usage records")


def _render_record_detail(console: Console, doc: Any) -> None:
    flat = {k: v for k, v in doc.items() if k not in ("lines", "price_snapshot")}
    record_renderer(f"call {doc['trace_id']}")(console, flat)
    lines = doc.get("lines") or []
    if lines:
        console.print()
        console.print("[bold]how the charge was computed[/bold]")
        for line in lines:
            console.print("  " + escape(line if isinstance(line, str) else str(line)))


def register(app: typer.Typer) -> None:
    app.command("credit")(credit)
    app.command("balance")(balance)
    app.command("usage")(usage)
