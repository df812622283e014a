"""``tollway import new-api|one-api --from ...``: move in from another gateway (docs/migrate.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tollway.cli.options import JsonFlag
from tollway.cli.runtime import run_admin

if TYPE_CHECKING:
    from tollway.services.admin import AdminService

import_app = typer.Typer(
    help="Move in from new-api or one-api: users, balances, keys, groups, channels, prices, codes.",
    no_args_is_help=True,
)

From = Annotated[
    str,
    typer.Option(
        "--from",
        help="Their database: a SQLite file path or postgresql://... (mysql:// needs aiomysql).",
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print what would change; write nothing.")]


class PriceMode(StrEnum):
    import_ = "import"
    report = "report"


Prices = Annotated[
    PriceMode,
    typer.Option(
        "--prices", help="import: set their prices where they differ (served models); report: compare."
    ),
]


def _run(flavour_name: str, location: str, dry_run: bool, prices: PriceMode, json_out: bool) -> None:
    async def action(admin: AdminService) -> dict[str, Any]:
        from tollway.migrate.importer import run_import
        from tollway.migrate.report import report_json
        from tollway.migrate.source_schema import Flavour

        admin.actor = f"{admin.actor} import:{flavour_name}"
        outcome = await run_import(
            admin, location, Flavour(flavour_name), dry_run=dry_run, import_prices=prices is PriceMode.import_
        )
        return report_json(outcome)

    def render(console: Any, doc: Any) -> None:
        from tollway.migrate.report import render_report

        render_report(console, doc)

    doc = run_admin(json_out, action, render)
    if doc.get("failed"):
        raise typer.Exit(1)


@import_app.command("new-api")
def import_new_api(
    location: From,
    dry_run: DryRun = False,
    prices: Prices = PriceMode.import_,
    json_out: JsonFlag = False,
) -> None:
    """Import a new-api (QuantumNous/new-api) database."""
    _run("new-api", location, dry_run, prices, json_out)


@import_app.command("one-api")
def import_one_api(
    location: From,
    dry_run: DryRun = False,
    prices: Prices = PriceMode.import_,
    json_out: JsonFlag = False,
) -> None:
    """Import a one-api (songquanpeng/one-api) database."""
    _run("one-api", location, dry_run, prices, json_out)
