"""Password reset by an emailed link and the outbox, on SQLite and PostgreSQL: only the token's
hash is stored, the link works once and before its expiry, completing it ends every session;
mail is delivered to a real SMTP server (aiosmtpd on loopback), a failed send keeps its error
and is retried; ``tollway outbox`` and ``tollway settings signup`` from the command line."""

from __future__ import annotations

import asyncio
import email
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from test_cli import Cli

from tollway.api.sessions import create_session
from tollway.services.admin import AdminService
from tollway.services.mail import Outbox, SmtpConfig, SmtpSender
from tollway.services.password_reset import InvalidResetLink, PasswordResets
from tollway.services.passwords import verify_password
from tollway.store.config_repo import utcnow
from tollway.store.secret_box import SecretBox
from tollway.store.tables import accounts, password_resets, sessions

PASSWORD = "correct horse battery"


def compose(link: str, minutes: int) -> tuple[str, str]:
    return "Reset your password", f"Open {link} within {minutes} minutes.\n"


async def new_account(engine: AsyncEngine, email_addr: str) -> str:
    svc = AdminService(engine, SecretBox("test-secret-key"), actor="test")
    return str((await svc.create_account(email_addr, password=PASSWORD))["id"])


def link_token(body: str) -> str:
    m = re.search(r"https://tollway\.example/console/reset/([A-Za-z0-9_-]+)", body)
    assert m, body
    return m.group(1)


async def test_reset_link_once_before_expiry_and_sessions_end(engine: AsyncEngine) -> None:
    account = await new_account(engine, "reset@example.com")
    async with engine.begin() as conn:
        await create_session(conn, account, ttl_s=600)
        await create_session(conn, account, ttl_s=600)
    resets = PasswordResets(engine, ttl_s=3600)
    outbox = Outbox(engine)
    assert not await resets.request("nobody@example.com", base_url="https://tollway.example", compose=compose)
    assert await outbox.list() == []  # nothing for an unknown email

    assert await resets.request("Reset@Example.com", base_url="https://tollway.example/", compose=compose)
    [mail] = await outbox.list()
    assert mail["to"] == "reset@example.com" and mail["sent_at"] is None
    body = (await outbox.get(mail["id"]))["body"]
    token = link_token(body)
    assert "60 minutes" in body
    async with engine.connect() as conn:
        stored = list((await conn.execute(select(password_resets.c.token_hash))).scalars())
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64

    assert await resets.account_of(token) == account
    with pytest.raises(InvalidResetLink):
        await resets.complete("not-a-token", "a brand new password")
    await resets.complete(token, "a brand new password")
    async with engine.connect() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.id == account))).one()
        left = (await conn.execute(select(sessions).where(sessions.c.account_id == account))).first()
    assert verify_password(row.password_hash, "a brand new password") and left is None
    assert await resets.account_of(token) is None
    with pytest.raises(InvalidResetLink):  # once only
        await resets.complete(token, "another new password")

    # an expired link does nothing
    await resets.request("reset@example.com", base_url="https://tollway.example", compose=compose)
    token = link_token((await outbox.get((await outbox.list())[0]["id"]))["body"])
    async with engine.begin() as conn:
        await conn.execute(update(password_resets).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await resets.account_of(token) is None
    with pytest.raises(InvalidResetLink):
        await resets.complete(token, "too late password")


async def test_racing_completions_use_the_link_once(engine: AsyncEngine) -> None:
    await new_account(engine, "race-reset@example.com")
    resets = PasswordResets(engine, ttl_s=3600)
    await resets.request("race-reset@example.com", base_url="https://tollway.example", compose=compose)
    token = link_token((await Outbox(engine).get((await Outbox(engine).list())[0]["id"]))["body"])
    results = await asyncio.gather(
        *(resets.complete(token, f"new password {i}") for i in range(4)), return_exceptions=True
    )
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
    assert all(isinstance(r, InvalidResetLink) for r in results if isinstance(r, BaseException))


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def smtp_config(port: int) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1", port=port, user=None, password=None, sender="Tollway <noreply@tollway.example>",
        security="none", timeout_s=5,
    )  # fmt: skip


async def test_smtp_delivery_marks_sent_and_retries_failures(
    engine: AsyncEngine, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    await new_account(engine, "mail@example.com")
    resets = PasswordResets(engine, ttl_s=3600)
    outbox = Outbox(engine)
    await resets.request("mail@example.com", base_url="https://tollway.example", compose=compose)

    # the server is down: the error is kept, nothing is marked sent
    down = await SmtpSender(engine, smtp_config(free_port())).send_pending()
    assert (down.sent, down.failed) == (0, 1)
    [mail] = await outbox.list(unsent_only=True)
    assert mail["error"] and mail["sent_at"] is None

    # the next round reaches the server: delivered once, marked sent, the error cleared
    up = await SmtpSender(engine, smtp_config(port)).send_pending()
    assert (up.sent, up.failed) == (1, 0)
    assert await outbox.list(unsent_only=True) == []
    [sent] = await outbox.list()
    assert sent["sent_at"] and sent["error"] is None
    [msg] = inbox.messages
    assert msg["To"] == "mail@example.com" and msg["Subject"] == "Reset your password"
    assert msg["From"] == "Tollway <noreply@tollway.example>"
    assert "https://tollway.example/console/reset/" in msg.get_payload(decode=True).decode()
    again = await SmtpSender(engine, smtp_config(port)).send_pending()
    assert (again.sent, again.failed) == (0, 0) and len(inbox.messages) == 1


def test_cli_outbox_and_signup_switch(db_url: str, tmp_path: Path) -> None:
    cli = Cli(db_url, tmp_path / "data")
    cli.json("admin", "account", "create", "--email", "cli-mail@example.com")

    async def request() -> None:
        from tollway.settings import normalise_database_url
        from tollway.store.db import make_engine

        engine = make_engine(normalise_database_url(db_url))
        try:
            resets = PasswordResets(engine, ttl_s=3600)
            await resets.request("cli-mail@example.com", base_url="https://tollway.example", compose=compose)
        finally:
            await engine.dispose()

    asyncio.run(request())
    listed = cli.json("outbox", "list", "--unsent")["mail"]
    assert [m["to"] for m in listed] == ["cli-mail@example.com"] and "body" not in listed[0]
    shown = cli.json("outbox", "show", str(listed[0]["id"]))
    assert "https://tollway.example/console/reset/" in shown["body"]
    text = cli.run("outbox", "show", str(listed[0]["id"]))
    assert text.returncode == 0 and "/console/reset/" in text.stdout
    missing = cli.run("outbox", "show", "999999", "--json")
    assert missing.returncode == 1 and '"not_found"' in missing.stdout

    assert cli.json("settings", "signup") == {"signup_enabled": True}  # TOLLWAY_SIGNUP_ENABLED default
    assert cli.json("settings", "signup", "off", "--reason", "invite only") == {"signup_enabled": False}
    assert cli.json("settings", "signup") == {"signup_enabled": False}
    assert cli.json("settings", "signup", "on") == {"signup_enabled": True}
    bad = cli.run("settings", "signup", "maybe")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
