"""The ``tollway`` command: ``serve``, ``admin ...``, ``migrate``, ``audit``, ``demo``,
``fake-upstream``, ``import``. Every command accepts ``--json`` and then prints one JSON document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from tollway.cli import admin, console_account_cmds, ops_cmds
from tollway.cli.import_cmds import import_app
from tollway.cli.options import JsonFlag
from tollway.cli.output import record_renderer
from tollway.cli.payments_cmds import payments_app
from tollway.cli.runtime import run_engine
from tollway.cli.secret_key_cmds import secret_key_app
from tollway.cli.usage_cmds import app as usage_app

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollway.settings import Settings

app = typer.Typer(
    name="tollway",
    help="Tollway: a self-hostable LLM API gateway with prepaid billing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(admin.app, name="admin")
app.add_typer(payments_app, name="payments")
app.add_typer(usage_app, name="usage")
app.add_typer(secret_key_app, name="secret-key")
app.add_typer(import_app, name="import")
ops_cmds.register(app)
console_account_cmds.register(app)  # settings, outbox (and admin account totp-reset)


@app.command("migrate")
def migrate_cmd(json_out: JsonFlag = False) -> None:
    """Apply pending database migrations (idempotent)."""

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from sqlalchemy import make_url

        url = make_url(settings.resolved_database_url())
        return {
            "migrated": True,
            "database": url.render_as_string(hide_password=True),
            "backend": engine.dialect.name,
        }

    def render(console: Console, doc: Any) -> None:
        record_renderer("database is up to date")(console, doc)

    run_engine(json_out, action, render)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
