"""``tollway admin codes ...``: redemption code (voucher card) batches."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tollway.cli.dates import parse_optional_expiry
from tollway.cli.options import JsonFlag
from tollway.cli.output import render_record, rows_renderer
from tollway.cli.payments_runtime import run_payments

if TYPE_CHECKING:
    from tollway.payments.context import PaymentsContext

codes_app = typer.Typer(
    help="Redemption codes: create batches, list, export CSV, revoke.", no_args_is_help=True
)
BATCH_COLUMNS = ("batch_id", "label", "kind", "value", "count", "expires_at", "states", "created_at")


class Kind(StrEnum):
    cash = "cash"
    voucher = "voucher"


@codes_app.command("create")
def codes_create(
    count: Annotated[int, typer.Option("--count", min=1, max=10_000, help="How many codes.")],
    value: Annotated[str, typer.Option("--value", help="Credits per code, e.g. 10.")],
    kind: Annotated[Kind, typer.Option("--kind", help="cash or voucher (vouchers expire with the batch).")],
    expires: Annotated[str | None, typer.Option(help="Last day to redeem (YYYY-MM-DD or ISO-8601).")] = None,
    label: Annotated[str, typer.Option(help="Batch label, e.g. the reseller.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Create a batch; prints the codes (also exportable later as CSV)."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.codes import CodeService

        return await CodeService(ctx, actor).create_batch(
            count=count, value=value, kind=kind.value, expires=parse_optional_expiry(expires), label=label
        )

    def render(console: Console, doc: Any) -> None:
        render_record(console, {k: v for k, v in doc.items() if k != "codes"}, title="code batch created")
        for code in doc["codes"]:
            console.print(code)

    run_payments(json_out, action, render)


@codes_app.command("list")
def codes_list(json_out: JsonFlag = False) -> None:
    """Batches with counts of active, redeemed and revoked codes."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.codes import CodeService

        return {"batches": await CodeService(ctx, actor).list_batches()}

    run_payments(json_out, action, rows_renderer("batches", BATCH_COLUMNS, empty="no code batches"))


@codes_app.command("export")
def codes_export(
    batch_id: Annotated[str, typer.Argument(help="Batch id.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the CSV here.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Export a batch as CSV (code, value, kind, expires_at, state, label, batch_id)."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.codes import CodeService

        text = await CodeService(ctx, actor).export_csv(batch_id)
        if output is not None:
            output.write_text(text, encoding="utf-8")
        return {
            "batch_id": batch_id,
            "rows": text.count("\n") - 1,
            "output": str(output) if output else None,
            "csv": text,
        }

    def render(console: Console, doc: Any) -> None:
        if doc["output"] is None:
            sys.stdout.write(doc["csv"])
        else:
            console.print(f"wrote {doc['rows']} codes to {doc['output']}")

    run_payments(json_out, action, render)


@codes_app.command("revoke")
def codes_revoke(
    code: Annotated[str | None, typer.Argument(help="The code to revoke (or use --batch).")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Revoke every unused code of a batch.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the audit log.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Revoke an unused code, or all unused codes of a batch."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.codes import CodeService

        return await CodeService(ctx, actor).revoke(code=code, batch_id=batch, reason=reason)

    run_payments(json_out, action, lambda console, doc: console.print(f"revoked {doc['revoked']} code(s)"))
