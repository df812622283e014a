"""Console sessions: random 256-bit bearer tokens, stored only as their SHA-256.

A token is ``tws_`` + 43 URL-safe characters. Its hash is the primary key of ``sessions``;
a session ends at ``expires_at`` (``TOLLWAY_SESSION_TTL_S`` after sign-in) or at logout.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.store.tables import accounts, sessions

TOKEN_PREFIX = "tws_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_session(
    conn: AsyncConnection, account_id: str, *, ttl_s: float, now: datetime | None = None
) -> tuple[str, datetime]:
    """A new session for ``account_id``; also clears that account's expired sessions."""
    now = now or datetime.now(UTC)
    token = new_token()
    expires = now + timedelta(seconds=ttl_s)
    await conn.execute(
        delete(sessions).where(sessions.c.account_id == account_id, sessions.c.expires_at <= now)
    )
    await conn.execute(
        sessions.insert().values(
            token_hash=hash_token(token), account_id=account_id, created_at=now, expires_at=expires
        )
    )
    return token, expires


async def session_account(conn: AsyncConnection, token: str) -> Row[Any] | None:
    """The account row behind a live session token, or ``None``."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    q = (
        select(accounts)
        .join(sessions, sessions.c.account_id == accounts.c.id)
        .where(sessions.c.token_hash == hash_token(token))
        .where(sessions.c.expires_at > datetime.now(UTC))
    )
    return (await conn.execute(q)).first()


async def delete_session(conn: AsyncConnection, token: str) -> bool:
    result = await conn.execute(delete(sessions).where(sessions.c.token_hash == hash_token(token)))
    return bool(result.rowcount)


async def account_by_email(conn: AsyncConnection, email: str) -> Row[Any] | None:
    q = select(accounts).where(accounts.c.email == email.strip().lower())
    return (await conn.execute(q)).first()
