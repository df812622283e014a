"""Who is calling the control API: the operator's admin token, or a signed-in account.

``Authorization: Bearer <token>``. The admin token (``TOLLWAY_ADMIN_TOKEN``) is compared in
constant time and refused outright when none is configured; any other bearer is looked up as
a session token. Roles: ``admin`` may do everything under ``/api/admin``; ``support`` may read
and credit; ``customer`` only has ``/api/me``. A suspended account's session is refused.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tollway.accounts.model import AccountStatus, Role
from tollway.api.deps import ControlDeps
from tollway.api.sessions import session_account
from tollway.errors import AuthenticationFailed, PermissionDenied

ADMIN_TOKEN_ACTOR = "api:admin-token"

bearer = HTTPBearer(
    auto_error=False,
    description="The admin token (TOLLWAY_ADMIN_TOKEN) or a session token from /api/auth/login.",
)


class Unauthenticated(AuthenticationFailed):
    code = "unauthenticated"


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
