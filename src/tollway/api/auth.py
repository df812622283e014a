"""Who is calling the control API: the operator's admin token, or a signed-in account.

``Authorization: Bearer <token>``. The admin token (``TOLLWAY_ADMIN_TOKEN``) is compared in
constant time and refused outright when none is configured; any other bearer is looked up as
a session token. Roles: ``admin`` may do everything under ``/api/admin``; ``support`` may read
and credit; ``customer`` only has ``/api/me``. A suspended account's session is refused, and
so is a staff session without two-factor (staff enroll in the console).

``/api/auth/login`` (:class:`ApiLogin`) is no way around two-factor: an account with it on
must send the current code as ``totp``; staff without it are refused and told to enroll in
the console. Wrong passwords and codes count against the same throttle as the console's sign-in
(``deps.throttles.login``: 5 per email or account, 30 per address, in 15 minutes; shared by
every node when Redis is configured).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tollway.accounts.model import AccountStatus, Role
from tollway.api.deps import ControlDeps
from tollway.api.sessions import create_session, session_account
from tollway.errors import AuthenticationFailed, PermissionDenied, RateLimited
from tollway.services.signin import InvalidCredentials, NextStep, SignIn
from tollway.services.totp import WrongTotpCode, totp_confirmed

ADMIN_TOKEN_ACTOR = "api:admin-token"

bearer = HTTPBearer(
    auto_error=False,
    description="The admin token (TOLLWAY_ADMIN_TOKEN) or a session token from /api/auth/login.",
)


class Unauthenticated(AuthenticationFailed):
    code = "unauthenticated"


class TotpRequired(AuthenticationFailed):
    code = "totp_required"


class TotpEnrollmentRequired(PermissionDenied):
    code = "totp_enrollment_required"


ENROLL_IN_CONSOLE = (
    "staff accounts must use two-factor authentication: sign in to the web console (/console/login) "
    "to set it up, then send the current code as `totp`"
)


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    actor: str  # written to the audit log
    account_id: str | None = None  # None for the admin token
    token: str | None = None  # the session token, for logout


class Authenticator:
    """FastAPI dependencies bound to one app's :class:`ControlDeps`."""

    def __init__(self, deps: ControlDeps) -> None:
        self.deps = deps

    async def _principal(self, creds: HTTPAuthorizationCredentials | None) -> Principal:
        if creds is None or not creds.credentials:
            raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
        token = creds.credentials
        admin_token = self.deps.settings.admin_token
        if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return Principal(Role.ADMIN, ADMIN_TOKEN_ACTOR)
        async with self.deps.engine.connect() as conn:
            row = await session_account(conn, token)
        if row is None:
            raise Unauthenticated("invalid or expired token; sign in again")
        if row.status != AccountStatus.ACTIVE.value:
            raise PermissionDenied("this account is suspended")
        if row.role != Role.CUSTOMER.value:
            async with self.deps.engine.connect() as conn:
                if not await totp_confirmed(conn, row.id):
                    raise TotpEnrollmentRequired(ENROLL_IN_CONSOLE, param="totp")
        return Principal(Role(row.role), f"account:{row.id}", account_id=row.id, token=token)

    async def session(self, creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        """Any signed-in account (the admin token is not an account)."""
        who = await self._principal(creds)
        if who.account_id is None:
            raise PermissionDenied("/api/me needs a session token; the admin token has no account")
        return who

    async def staff(self, creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        """The admin token, or an admin or support session: reads and credits."""
        who = await self._principal(creds)
        if who.role not in (Role.ADMIN, Role.SUPPORT):
            raise PermissionDenied("staff only")
        return who

    async def admin(self, creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        """The admin token or an admin session: every change."""
        who = await self._principal(creds)
        if who.role is not Role.ADMIN:
            raise PermissionDenied("admins only")
        return who


class ApiLogin:
    """``POST /api/auth/login``: the password, and the ``totp`` code when two-factor is on."""

    def __init__(self, deps: ControlDeps) -> None:
        self.deps = deps
        self.signin = SignIn(deps.engine, deps.box, deps.settings)
        self.throttle = deps.throttles.login

    async def login(self, email: str, password: str, totp: str | None, client_ip: str) -> dict[str, Any]:
        email = email.strip().lower()
        keys = (f"email:{email}", f"ip:{client_ip}")
        if await self.throttle.blocked(*keys):
            raise RateLimited(
                "too many failed sign-ins; wait 15 minutes",
                limit_name="sign-in attempts",
                scope="email",
                limit=self.throttle.limit,
                remaining=0,
                retry_after_s=self.throttle.window_s,
            )
        try:
            row = await self.signin.check_password(email, password)
        except InvalidCredentials:
            await self.throttle.fail(*keys)
            raise
        step = await self.signin.next_step(row)
        if step is NextStep.ENROLL:
            raise TotpEnrollmentRequired(ENROLL_IN_CONSOLE, param="totp")
        if step is NextStep.CODE:
            if not totp:
                raise TotpRequired(
                    "two-factor is on for this account: send the current code as `totp`", param="totp"
                )
            code_keys = (f"totp:{row.id}", *keys)
            if await self.throttle.blocked(*code_keys):
                raise RateLimited(
                    "too many wrong two-factor codes; wait 15 minutes",
                    limit_name="sign-in attempts",
                    scope="account",
                    limit=self.throttle.limit,
                    remaining=0,
                    retry_after_s=self.throttle.window_s,
                )
            if not await self.signin.totp.verify(row.id, totp):
                await self.throttle.fail(*code_keys)
                raise WrongTotpCode("wrong or already used two-factor code", param="totp")
        await self.throttle.clear(keys[0], f"totp:{row.id}")  # never the address's count
        async with self.deps.engine.begin() as conn:
            token, expires = await create_session(conn, row.id, ttl_s=self.deps.settings.session_ttl_s)
        return {
            "token": token,
            "token_type": "bearer",
            "expires_at": expires.isoformat(),
            "account": {"id": row.id, "email": row.email, "role": row.role},
        }
