"""``tollway secret-key rotate``: re-seal every stored secret with a new TOLLWAY_SECRET_KEY.

The new key comes from ``TOLLWAY_NEW_SECRET_KEY`` or ``--new-key-file`` (never the command
line, where ``ps`` and the shell history would keep it). See docs/security.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tollway.cli.options import JsonFlag, Reason
from tollway.cli.runtime import cli_actor, run_engine
from tollway.errors import InvalidRequest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollway.settings import Settings

NEW_KEY_ENV = "TOLLWAY_NEW_SECRET_KEY"
secret_key_app = typer.Typer(help="The key that seals channel credentials, TOTP secrets and codes.")
secret_key_app.info.no_args_is_help = True


def _new_key(path: Path | None) -> str:
    if path is not None:
        try:
            return path.expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidRequest(f"cannot read {str(path)!r}: {exc.strerror}", param="new_key_file") from exc
    key = os.environ.get(NEW_KEY_ENV, "").strip()
    if not key:
        raise InvalidRequest(f"give the new key in {NEW_KEY_ENV} or --new-key-file", param="new_key")
    return key


@secret_key_app.command("rotate")
def rotate(
    new_key_file: Annotated[
        Path | None, typer.Option(help=f"A file holding the new key (else {NEW_KEY_ENV}).")
    ] = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Re-seal every sealed column with the new key in one transaction (idempotent: run it again
    after a failure). Then set TOLLWAY_SECRET_KEY to the new key and restart every server."""

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from tollway.security.rotation import check_new_key, replace_key_file, rotate_secret_key
        from tollway.store.secret_box import SecretBox, key_file

        old = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        file = None if settings.secret_key else key_file(settings.data_dir)
        old_key = settings.secret_key or (file.read_text().strip() if file else "")
        key = check_new_key(_new_key(new_key_file), old_key)
        report = await rotate_secret_key(engine, old, SecretBox(key), actor=cli_actor(), reason=reason)
        if file is not None:  # after the commit: a crash in between leaves a re-runnable state
            replace_key_file(file, key)
            report.key_file = str(file)
        return report.as_json()

    def render(console: Console, doc: Any) -> None:
        for table, n in doc["rotated"].items():
            console.print(f"{table}: {n} re-sealed, {doc['already'][table]} already sealed with the new key")
        if doc["key_file"]:
            console.print(f"the new key replaced {doc['key_file']}; restart every server")
        else:
            console.print("now set TOLLWAY_SECRET_KEY to the new key and restart every server")

    run_engine(json_out, action, render)
