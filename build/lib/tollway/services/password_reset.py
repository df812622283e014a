"""Password reset by an emailed link.

A request for an existing, active account makes a random 256-bit token, stores only its
SHA-256 in ``password_resets`` (valid ``TOLLWAY_PASSWORD_RESET_TTL_S``, one use) and queues
the mail with the link ``{base}/console/reset/{token}`` in the same transaction. A request for
an unknown email does nothing, and the caller answers both the same way (no enumeration).
Completing a reset sets the new password (argon2id), marks the token used — a conditional
UPDATE, so two racing submissions cannot both use it — and ends every session of the account.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.accounts.model import AccountStatus
from tollway.errors import InvalidRequest
from tollway.services.mail import queue_mail
from tollway.services.passwords import hash_password
from tollway.services.signin import account_by_email
from tollway.store.config_repo import utcnow, write_audit
from tollway.store.tables import accounts, password_resets, sessions

# (link, minutes the link is valid) -> (subject, body), in the reader's language
Compose = Callable[[str, int], tuple[str, str]]


class InvalidResetLink(InvalidRequest):
    code = "invalid_reset_token"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class PasswordResets:
    def __init__(self, engine: AsyncEngine, *, ttl_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s

    async def request(self, email: str, *, base_url: str, compose: Compose) -> bool:
        """Queue a reset mail when ``email`` is an active account's; ``True`` if one was queued
        (for tests and logs only: never tell the person asking)."""
        async with self.engine.begin() as conn:
            row = await account_by_email(conn, email)
            if row is None or row.status != AccountStatus.ACTIVE.value:
                return False
            token = secrets.token_urlsafe(32)
            now = utcnow()
            await conn.execute(
                password_resets.insert().values(
                    token_hash=token_hash(token),
                    account_id=row.id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.ttl_s),
                )
            )
            subject, body = compose(f"{base_url.rstrip('/')}/console/reset/{token}", int(self.ttl_s // 60))
            await queue_mail(conn, to_addr=row.email, subject=subject, body=body)
        return True

    async def account_of(self, token: str) -> str | None:
        """The account a live (unused, unexpired) token resets, else ``None``."""
        q = select(password_resets.c.account_id).where(
            password_resets.c.token_hash == token_hash(token),
            password_resets.c.used_at.is_(None),
            password_resets.c.expires_at > utcnow(),
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(q)).scalar_one_or_none()

    async def complete(self, token: str, new_password: str) -> str:
        """Set the new password and spend the token; returns the account id."""
        new_hash = await asyncio.to_thread(hash_password, new_password)  # checks the length too
        now = utcnow()
        async with self.engine.begin() as conn:
            account_id = (
                await conn.execute(
                    select(password_resets.c.account_id).where(
                        password_resets.c.token_hash == token_hash(token)
                    )
                )
            ).scalar_one_or_none()
            spent = await conn.execute(
                update(password_resets)
                .where(
                    password_resets.c.token_hash == token_hash(token),
                    password_resets.c.used_at.is_(None),
                    password_resets.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if account_id is None or spent.rowcount != 1:
                raise InvalidResetLink("this reset link is invalid, used or expired", param="token")
            await conn.execute(
                update(accounts).where(accounts.c.id == account_id).values(password_hash=new_hash)
            )
            await conn.execute(  # any other link sent before is void too
                update(password_resets)
                .where(password_resets.c.account_id == account_id, password_resets.c.used_at.is_(None))
                .values(used_at=now)
            )
            await conn.execute(delete(sessions).where(sessions.c.account_id == account_id))
            await write_audit(
                conn,
                actor=f"account:{account_id}",
                action="account.password_reset",
                target=f"account:{account_id}",
            )
        return str(account_id)
