"""``tollway payments ...``: reconciliation (with a progress bar), prices per currency, FX."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tollway.cli.options import JsonFlag
from tollway.cli.output import record_renderer, render_record, rows_renderer
from tollway.cli.payments_runtime import run_payments

if TYPE_CHECKING:
    from tollway.payments.context import PaymentsContext

payments_app = typer.Typer(
    help="Payments: reconcile, prices per currency, exchange rates.", no_args_is_help=True
)
price_app = typer.Typer(help="What a credit costs in each payment currency.", no_args_is_help=True)
payments_app.add_typer(price_app, name="price")
PRICE_COLUMNS = (
    "currency",
    "mode",
    "price_per_credit",
    "fx_rate",
    "margin",
    "fx_source",
    "min_amount",
    "enabled",
)


@payments_app.command("reconcile")
def reconcile(json_out: JsonFlag = False) -> None:
    """Ask providers about stuck orders and refunds; credit the paid, expire the abandoned."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.reconcile import Reconciler

        progress = Progress(
            TextColumn("[bold]reconciling"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=json_out,
        )
        with progress:
            task = progress.add_task("", total=None)

            def on_start(total: int) -> None:
                progress.update(task, total=total)

            def advance(label: str) -> None:
                progress.update(task, advance=1, description=label)

            return await Reconciler(ctx, actor).run(on_start=on_start, progress=advance)

    def render(console: Console, doc: Any) -> None:
        render_record(console, doc, title="reconciliation")

    run_payments(json_out, action, render)


@price_app.command("list")
def price_list(json_out: JsonFlag = False) -> None:
    """Currencies, their price per credit, FX rate and source."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.pricing import PricingService

        return {"currencies": await PricingService(ctx, actor).list_json()}

    run_payments(json_out, action, rows_renderer("currencies", PRICE_COLUMNS, empty="no currencies"))


@price_app.command("set")
def price_set(
    currency: Annotated[str, typer.Argument(help="USD, CNY, ...")],
    price_per_credit: Annotated[str | None, typer.Option(help="Fixed price of one credit.")] = None,
    fx_rate: Annotated[str | None, typer.Option(help="FX mode: currency units per USD.")] = None,
    margin: Annotated[str | None, typer.Option(help="FX mode: 0.05 = 5% above the rate.")] = None,
    min_amount: Annotated[str | None, typer.Option(help="Smallest top-up.")] = None,
    presets: Annotated[str | None, typer.Option(help="Comma-separated preset amounts.")] = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="Offer this currency.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the audit log.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Set a currency's price: fixed (--price-per-credit) or FX (--fx-rate / --margin)."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.pricing import PricingService

        return await PricingService(ctx, actor).set_price(
            currency,
            price_per_credit=price_per_credit,
            fx_rate=fx_rate,
            margin=margin,
            min_amount=min_amount,
            presets=None if presets is None else [p.strip() for p in presets.split(",") if p.strip()],
            enabled=enable,
            reason=reason,
        )

    run_payments(json_out, action, record_renderer("price set"))


@payments_app.command("fx-refresh")
def fx_refresh(
    url: Annotated[str | None, typer.Option(help="Source (default TOLLWAY_FX_URL).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Fetch exchange rates now into every FX-mode currency."""

    async def action(ctx: PaymentsContext, actor: str) -> dict[str, Any]:
        from tollway.payments.pricing import PricingService

        return await PricingService(ctx, actor).refresh_fx(url)

    run_payments(json_out, action, record_renderer("exchange rates"))
