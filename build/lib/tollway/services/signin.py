"""Signing in, shared by the console and ``/api/auth/login``.

1. The password (argon2id; an unknown email costs the same work, so timing tells nothing).
2. When the account has two-factor on: a code. Staff (support, admin) must have it on: a staff
   member without it is sent to enrollment and gets no session until a code confirms it.

Between the two steps the console holds a *pending sign-in* instead of a session: a token
sealed with the :class:`SecretBox` (Fernet, so encrypted and authenticated) that names the
account, the step, an expiry (``TOLLWAY_PENDING_SIGNIN_TTL_S``, 5 minutes) and a fingerprint of
the password hash. It lives in an HttpOnly cookie and opens no page but the code (or
enrollment) form. Sealing it rather than storing it needs no table and no clean-up, survives a
restart, and a password change voids it (the fingerprint no longer matches). A stolen pending
token is worth no more than the password was: the code is still needed, and code attempts are
throttled like passwords.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.accounts.model import AccountStatus
from tollway.errors import AuthenticationFailed, PermissionDenied
from tollway.services.passwords import hash_password, verify_password
from tollway.services.totp import STAFF_ROLES, TotpService
from tollway.settings import Settings
from tollway.store.secret_box import SecretBox
from tollway.store.tables import accounts

_decoy: list[str] = []  # an argon2 hash to verify against when the email is unknown


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"


class AccountSuspended(PermissionDenied):
    pass


class NextStep(StrEnum):
    CODE = "code"  # two-factor is on: ask for a code
    ENROLL = "enroll"  # staff without two-factor: set it up first


def password_fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


async def account_by_email(conn: AsyncConnection, email: str) -> Any:
    q = select(accounts).where(accounts.c.email == email.strip().lower())
    return (await conn.execute(q)).first()


class SignIn:
    def __init__(self, engine: AsyncEngine, box: SecretBox, settings: Settings) -> None:
        self.engine = engine
        self.box = box
        self.settings = settings
        self.totp = TotpService(engine, box, actor="signin")

    async def check_password(self, email: str, password: str) -> Any:
        """The account row when the password is right; :class:`InvalidCredentials` (the same for
        an unknown email) or :class:`AccountSuspended` otherwise."""
        async with self.engine.connect() as conn:
            row = await account_by_email(conn, email)
        if row is None or not row.password_hash:
            if not _decoy:
                _decoy.append(await asyncio.to_thread(hash_password, "decoy-password"))
            await asyncio.to_thread(verify_password, _decoy[0], password)
            raise InvalidCredentials("wrong email or password")
        if not await asyncio.to_thread(verify_password, row.password_hash, password):
            raise InvalidCredentials("wrong email or password")
        if row.status != AccountStatus.ACTIVE.value:
            raise AccountSuspended("this account is suspended")
        return row

    async def next_step(self, row: Any) -> NextStep | None:
        """What stands between a right password and a session, if anything."""
        status = await self.totp.status(row.id)
        if status.enabled:
            return NextStep.CODE
        if row.role in STAFF_ROLES:
            return NextStep.ENROLL
        return None

    # --- the pending sign-in between the password and the code ---------------------------------

    def seal_pending(self, row: Any, step: NextStep) -> str:
        doc = {
            "a": row.id,
            "s": step.value,
            "exp": time.time() + self.settings.pending_signin_ttl_s,
            "fp": password_fingerprint(row.password_hash),
        }
        return self.box.seal(orjson.dumps(doc).decode())

    async def open_pending(self, token: str, step: NextStep) -> Any:
        """The account row of a live pending sign-in at ``step``, else ``None``."""
        if not token:
            return None
        try:
            doc = orjson.loads(self.box.open(token))
            account_id, expires, fingerprint = str(doc["a"]), float(doc["exp"]), str(doc["fp"])
            if doc["s"] != step.value or expires < time.time():
                return None
        except (ValueError, KeyError, TypeError, UnicodeError):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
        if row is None or row.status != AccountStatus.ACTIVE.value:
            return None
        if password_fingerprint(row.password_hash) != fingerprint:
            return None
        return row
