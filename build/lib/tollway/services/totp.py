"""TOTP two-factor (RFC 6238: 6 digits, 30-second steps, SHA-1, as every authenticator app).

The shared secret is sealed with the :class:`SecretBox` in ``account_totp``. A row without
``confirmed_at`` is an enrollment in progress; two-factor is on once a code has confirmed it.
A code is accepted for the current step and one step either side (clock drift), and each
step only once: ``last_step`` moves forward with a conditional UPDATE, so two requests racing
with the same code cannot both pass, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Any

import pyotp
import segno
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.accounts.model import Role
from tollway.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from tollway.services.passwords import verify_password
from tollway.store import config_repo as repo
from tollway.store.secret_box import SecretBox
from tollway.store.tables import account_totp, accounts, sessions

STEP_S = 30
DRIFT_STEPS = 1
ISSUER = "Tollway"
STAFF_ROLES = (Role.ADMIN.value, Role.SUPPORT.value)


class WrongTotpCode(AuthenticationFailed):
    code = "invalid_totp_code"


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_S)


def code_for_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to (now, or one step either side), else ``None``."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    here = current_step(now)
    for step in range(here - DRIFT_STEPS, here + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_for_step(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code as an inline ``<svg>`` (no image request, nothing from outside)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, border=2, light="#fff", svgclass="qr-code"))


@dataclass(frozen=True, slots=True)
class TotpStatus:
    enabled: bool
    pending_secret: str | None  # an enrollment in progress: the secret to show


async def totp_confirmed(conn: AsyncConnection, account_id: str) -> bool:
    q = select(account_totp.c.confirmed_at).where(account_totp.c.account_id == account_id)
    return (await conn.execute(q)).scalar_one_or_none() is not None


class TotpService:
    def __init__(self, engine: AsyncEngine, box: SecretBox, actor: str = "system") -> None:
        self.engine = engine
        self.box = box
        self.actor = actor

    async def _row(self, conn: AsyncConnection, account_id: str) -> Any:
        q = select(account_totp).where(account_totp.c.account_id == account_id)
        return (await conn.execute(q)).first()

    async def status(self, account_id: str) -> TotpStatus:
        async with self.engine.connect() as conn:
            row = await self._row(conn, account_id)
        if row is None:
            return TotpStatus(False, None)
        if row.confirmed_at is not None:
            return TotpStatus(True, None)
        return TotpStatus(False, self.box.open(row.secret))

    async def begin(self, account_id: str) -> str:
        """Start (or continue) an enrollment: the secret to show, kept until confirmed."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, account_id)
            if row is not None and row.confirmed_at is not None:
                raise Conflict("two-factor authentication is already on", param="totp")
            if row is not None:
                return self.box.open(row.secret)
            secret = pyotp.random_base32()
            await conn.execute(
                account_totp.insert().values(account_id=account_id, secret=self.box.seal(secret))
            )
            return secret

    async def confirm(self, account_id: str, code: str) -> None:
        """Finish an enrollment with a code from the app; two-factor is on from here."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, account_id)
            if row is None or row.confirmed_at is not None:
                raise Conflict("there is no two-factor enrollment to confirm", param="totp")
            step = matching_step(self.box.open(row.secret), code)
            if step is None:
                raise WrongTotpCode("wrong two-factor code", param="totp")
            result = await conn.execute(
                update(account_totp)
                .where(account_totp.c.account_id == account_id, account_totp.c.confirmed_at.is_(None))
                .values(confirmed_at=repo.utcnow(), last_step=step)
            )
            if result.rowcount != 1:
                raise Conflict("there is no two-factor enrollment to confirm", param="totp")
            await repo.write_audit(
                conn, actor=self.actor, action="account.totp_enable", target=f"account:{account_id}"
            )

    async def verify(self, account_id: str, code: str) -> bool:
        """A sign-in code: right for this account, and its time step not used before."""
        async with self.engine.begin() as conn:
            row = await self._row(conn, account_id)
            if row is None or row.confirmed_at is None:
                return False
            return await self._use_code(conn, account_id, self.box.open(row.secret), code)

    async def _use_code(self, conn: AsyncConnection, account_id: str, secret: str, code: str) -> bool:
        step = matching_step(secret, code)
        if step is None:
            return False
        result = await conn.execute(
            update(account_totp)
            .where(
                account_totp.c.account_id == account_id,
                or_(account_totp.c.last_step.is_(None), account_totp.c.last_step < step),
            )
            .values(last_step=step)
        )
        return result.rowcount == 1

    async def cancel_enrollment(self, account_id: str) -> None:
        """Drop an enrollment that was never confirmed (an enabled one stays)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(account_totp).where(
                    account_totp.c.account_id == account_id, account_totp.c.confirmed_at.is_(None)
                )
            )

    async def disable(self, account_id: str, *, password: str, code: str) -> None:
        """A customer turns two-factor off with their password and a current code."""
        async with self.engine.begin() as conn:
            account = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
            row = await self._row(conn, account_id)
            if account is None or row is None or row.confirmed_at is None:
                raise Conflict("two-factor authentication is not on", param="totp")
            if account.role in STAFF_ROLES:
                raise InvalidRequest("staff must keep two-factor authentication on", param="totp")
            if not await asyncio.to_thread(verify_password, account.password_hash, password):
                raise AuthenticationFailed("wrong password", param="password")
            if not await self._use_code(conn, account_id, self.box.open(row.secret), code):
                raise WrongTotpCode("wrong two-factor code", param="totp")
            await conn.execute(delete(account_totp).where(account_totp.c.account_id == account_id))
            await repo.write_audit(
                conn, actor=self.actor, action="account.totp_disable", target=f"account:{account_id}"
            )

    async def reset(self, account_id: str, *, reason: str = "") -> dict[str, Any]:
        """Operator recovery for a lost authenticator: remove the secret and end the account's
        sessions. Staff enroll again at their next sign-in; customers may set it up again."""
        async with self.engine.begin() as conn:
            account = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
            if account is None:
                raise NotFound(f"no account {account_id!r}", param="account_id")
            row = await self._row(conn, account_id)
            await conn.execute(delete(account_totp).where(account_totp.c.account_id == account_id))
            ended = await conn.execute(delete(sessions).where(sessions.c.account_id == account_id))
            before = "off" if row is None else ("on" if row.confirmed_at is not None else "enrolling")
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="account.totp_reset",
                target=f"account:{account_id}",
                reason=reason,
                before={"totp": before},
                after={"totp": "off"},
            )
        return {
            "id": account_id,
            "email": account.email,
            "totp": "off",
            "was": before,
            "sessions_ended": int(ended.rowcount or 0),
        }
