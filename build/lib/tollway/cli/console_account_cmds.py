"""Console accounts from the command line: ``tollway settings signup [on|off]``,
``tollway outbox list|show ID`` (mail waiting for, or sent through, SMTP) and
``tollway admin account totp-reset ACCOUNT`` (a lost authenticator; audited)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from tollway.cli.account_cmds import account_app
from tollway.cli.options import JsonFlag, Reason
from tollway.cli.output import record_renderer, rows_renderer
from tollway.cli.runtime import cli_actor, run_engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollway.settings import Settings

settings_app = typer.Typer(help="Settings the operator changes at run time (also in the console).")
settings_app.info.no_args_is_help = True
outbox_app = typer.Typer(help="Mail Tollway sends (password resets): read it when SMTP is not set up.")
outbox_app.info.no_args_is_help = True


class OnOff(StrEnum):
    on = "on"
    off = "off"


@settings_app.command("signup")
def signup(
    state: Annotated[OnOff | None, typer.Argument(help="on or off; omit to show the current state.")] = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Show, or turn on or off, sign-up in the console (TOLLWAY_SIGNUP_ENABLED is the default)."""

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from tollway.services.operator_settings import SIGNUP_ENABLED, OperatorSettings

        ops = OperatorSettings(engine, {SIGNUP_ENABLED: settings.signup_enabled})
        if state is not None:
            await ops.set_signup_enabled(state is OnOff.on, actor=cli_actor(), reason=reason)
        return {"signup_enabled": await ops.signup_enabled()}

    def render(console: Console, doc: Any) -> None:
        console.print(f"sign-up is {'on' if doc['signup_enabled'] else 'off'}")

    run_engine(json_out, action, render)


MAIL_COLUMNS = ("id", "created_at", "to", "subject", "sent_at", "error")


@outbox_app.command("list")
def outbox_list(
    unsent: Annotated[bool, typer.Option("--unsent", help="Only mail not sent yet.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 50,
    json_out: JsonFlag = False,
) -> None:
    """List mail, newest first (bodies with `outbox show ID`)."""

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from tollway.services.mail import Outbox

        return {"mail": await Outbox(engine).list(limit=limit, unsent_only=unsent)}

    run_engine(json_out, action, rows_renderer("mail", MAIL_COLUMNS, empty="the outbox is empty"))


@outbox_app.command("show")
def outbox_show(
    mail_id: Annotated[int, typer.Argument(metavar="ID", help="The mail's id (from `outbox list`).")],
    json_out: JsonFlag = False,
) -> None:
    """Show one mail with its body (a password-reset link: hand it only to the account's owner)."""

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from tollway.services.mail import Outbox

        return await Outbox(engine).get(mail_id)

    def render(console: Console, doc: Any) -> None:
        record_renderer()(console, {k: v for k, v in doc.items() if k != "body"})
        console.print()
        console.print(escape(doc["body"]), soft_wrap=True)

    run_engine(json_out, action, render)


@account_app.command("totp-reset")
def totp_reset(
    account: Annotated[str, typer.Argument(metavar="ACCOUNT", help="Account UUID or email.")],
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Turn off an account's two-factor (lost device) and end its sessions. Staff set it up again
    at their next sign-in."""

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from tollway.errors import NotFound
        from tollway.services.signin import account_by_email
        from tollway.services.totp import TotpService
        from tollway.store.secret_box import SecretBox

        account_id = account
        if "@" in account:
            async with engine.connect() as conn:
                row = await account_by_email(conn, account)
            if row is None:
                raise NotFound(f"no account with email {account!r}", param="account")
            account_id = str(row.id)
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        return await TotpService(engine, box, actor=cli_actor()).reset(account_id, reason=reason)

    run_engine(json_out, action, record_renderer("two-factor reset"))


def register(app: typer.Typer) -> None:
    app.add_typer(settings_app, name="settings")
    app.add_typer(outbox_app, name="outbox")
