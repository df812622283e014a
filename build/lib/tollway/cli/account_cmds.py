"""``tollway admin account|key ...``: customer accounts and their API keys."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from tollway.cli.dates import parse_optional_expiry
from tollway.cli.options import Concurrency, JsonFlag, Rpm, Tpm, secret_arg
from tollway.cli.output import record_renderer, render_record, rows_renderer
from tollway.cli.runtime import run_admin

if TYPE_CHECKING:
    from tollway.services.admin import AdminService

account_app = typer.Typer(help="Accounts: create, suspend, activate.", no_args_is_help=True)
key_app = typer.Typer(help="API keys: create (secret shown once), list, disable.")
key_app.info.no_args_is_help = True

KEY_COLUMNS = ("id", "name", "prefix", "group", "status", "expires_at", "spend_cap_nano")

AccountId = Annotated[str, typer.Argument(help="Account UUID.")]
KeyId = Annotated[str, typer.Argument(help="Key id (UUID).")]


class RoleOpt(StrEnum):
    customer = "customer"
    support = "support"
    admin = "admin"


# --- accounts -------------------------------------------------------------------------------


@account_app.command("create")
def account_create(
    email: Annotated[str, typer.Option("--email", help="Sign-in email, unique.")],
    password: Annotated[
        str | None,
        typer.Option(help="Console password (8+ characters); '-' reads it from stdin."),
    ] = None,
    role: Annotated[RoleOpt, typer.Option("--role")] = RoleOpt.customer,
    json_out: JsonFlag = False,
) -> None:
    """Create an account (prints its id)."""

    async def action(svc: AdminService) -> dict[str, Any]:
        secret = secret_arg(password, param="password")
        return await svc.create_account(email, password=secret, role=role.value)

    run_admin(json_out, action, record_renderer("account created"))


def _account_status(account_id: str, status: str, reason: str, json_out: bool) -> None:
    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.set_account_status(account_id, status, reason=reason)

    run_admin(json_out, action, record_renderer())


ReasonOpt = Annotated[str, typer.Option("--reason", help="Recorded in the audit log.")]


@account_app.command("suspend")
def account_suspend(account_id: AccountId, reason: ReasonOpt = "", json_out: JsonFlag = False) -> None:
    """Suspend an account: its keys stop working at once."""
    _account_status(account_id, "suspended", reason, json_out)


@account_app.command("activate")
def account_activate(account_id: AccountId, reason: ReasonOpt = "", json_out: JsonFlag = False) -> None:
    """Re-activate a suspended account."""
    _account_status(account_id, "active", reason, json_out)


@account_app.command("show")
def account_show(account_id: AccountId, json_out: JsonFlag = False) -> None:
    """Show an account."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.get_account(account_id)

    run_admin(json_out, action, record_renderer())


# --- keys -----------------------------------------------------------------------------------


def _render_new_key(console: Console, doc: Any) -> None:
    shown = {k: v for k, v in doc.items() if k != "secret"}
    render_record(console, shown, title="key created")
    console.print()
    console.print(f"[bold]secret:[/bold] {escape(doc['secret'])}")
    console.print("This is the only time the secret is shown; store it now.")


@key_app.command("create")
def key_create(
    account_id: AccountId,
    name: Annotated[str, typer.Option("--name", help="A name to recognise the key by.")],
    group: Annotated[str, typer.Option("--group", help="Group the key is bound to.")],
    expires: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD (end of that day, UTC) or an ISO-8601 datetime."),
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated allow-list (empty = the group's).")
    ] = None,
    spend_cap: Annotated[
        str | None, typer.Option("--spend-cap", help="Total credits this key may spend.")
    ] = None,
    ip_allow: Annotated[
        str | None, typer.Option("--ip-allow", help="Comma-separated CIDRs allowed to call.")
    ] = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    concurrency: Concurrency = None,
    json_out: JsonFlag = False,
) -> None:
    """Create an API key; prints its sk- secret, the only time it is shown."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.create_key(
            account_id,
            name=name,
            group=group,
            expires=parse_optional_expiry(expires),
            models=models,
            spend_cap=spend_cap,
            ip_allow=ip_allow,
            rpm=rpm,
            tpm=tpm,
            concurrency=concurrency,
        )

    run_admin(json_out, action, _render_new_key)


@key_app.command("list")
def key_list(account_id: AccountId, json_out: JsonFlag = False) -> None:
    """List an account's keys (never their secrets)."""

    async def action(svc: AdminService) -> dict[str, Any]:
        await svc.get_account(account_id)  # an unknown account is an error, not an empty list
        return {"account_id": account_id, "keys": await svc.list_keys(account_id)}

    run_admin(json_out, action, rows_renderer("keys", KEY_COLUMNS, empty="no keys"))


def _key_status(key_id: str, status: str, json_out: bool) -> None:
    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.set_key_status(key_id, status)

    run_admin(json_out, action, record_renderer(f"key {status}"))


@key_app.command("disable")
def key_disable(key_id: KeyId, json_out: JsonFlag = False) -> None:
    """Disable a key (it can be enabled again)."""
    _key_status(key_id, "disabled", json_out)


@key_app.command("enable")
def key_enable(key_id: KeyId, json_out: JsonFlag = False) -> None:
    """Enable a disabled key."""
    _key_status(key_id, "enabled", json_out)


@key_app.command("revoke")
def key_revoke(key_id: KeyId, json_out: JsonFlag = False) -> None:
    """Revoke a key for good."""
    _key_status(key_id, "revoked", json_out)


@key_app.command("delete")
def key_delete(key_id: KeyId, json_out: JsonFlag = False) -> None:
    """Delete a key: revoked for good and hidden from key lists (its usage records stay)."""
    _key_status(key_id, "deleted", json_out)


@key_app.command("rename")
def key_rename(
    key_id: KeyId, name: Annotated[str, typer.Argument(help="The new name.")], json_out: JsonFlag = False
) -> None:
    """Rename a key."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.rename_key(key_id, name)

    run_admin(json_out, action, record_renderer("key renamed"))
