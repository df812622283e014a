"""``/api/admin/accounts|keys|usage``: accounts, their keys, credits, balances and usage.

Staff (admin or support) may read and credit; creating accounts and keys and changing
their status is for admins.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from tollway.api.auth import Authenticator, Principal
from tollway.api.deps import ControlDeps
from tollway.api.schemas import AccountCreate, CreditCreate, KeyCreate, StatusChange, joined

Json = dict[str, Any]
UsageLimit = Query(50, ge=1, le=10_000, description="Newest N records.")


def accounts_router(deps: ControlDeps, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/admin")
    staff = Depends(auth.staff)
    admin = Depends(auth.admin)

    # --- accounts ---------------------------------------------------------------------------

    @router.post("/accounts", tags=["accounts"], status_code=201, summary="Create an account")
    async def create_account(body: AccountCreate, who: Principal = admin) -> Json:
        svc = deps.service(who.actor)
        return await svc.create_account(body.email, password=body.password, role=body.role)

    @router.get("/accounts/{account_id}", tags=["accounts"], summary="Show an account")
    async def get_account(account_id: str, who: Principal = staff) -> Json:
        return await deps.service(who.actor).get_account(account_id)

    async def set_status(who: Principal, account_id: str, status: str, body: StatusChange) -> Json:
        out = await deps.service(who.actor).set_account_status(account_id, status, reason=body.reason)
        deps.changed()
        return out

    @router.post("/accounts/{account_id}/suspend", tags=["accounts"], summary="Suspend")
    async def suspend(account_id: str, body: StatusChange | None = None, who: Principal = admin) -> Json:
        return await set_status(who, account_id, "suspended", body or StatusChange())

    @router.post("/accounts/{account_id}/activate", tags=["accounts"], summary="Re-activate")
    async def activate(account_id: str, body: StatusChange | None = None, who: Principal = admin) -> Json:
        return await set_status(who, account_id, "active", body or StatusChange())

    # --- keys -------------------------------------------------------------------------------

    @router.post(
        "/accounts/{account_id}/keys",
        tags=["keys"],
        status_code=201,
        summary="Create an API key (the response is the only time its secret is shown)",
    )
    async def create_key(account_id: str, body: KeyCreate, who: Principal = admin) -> Json:
        out = await deps.service(who.actor).create_key(
            account_id,
            name=body.name,
            group=body.group,
            expires=body.expires,
            models=joined(body.models),
            spend_cap=body.spend_cap,
            ip_allow=joined(body.ip_allow),
            rpm=body.rpm,
            tpm=body.tpm,
            concurrency=body.concurrency,
        )
        deps.changed()
        return out

    @router.get("/accounts/{account_id}/keys", tags=["keys"], summary="List an account's keys")
    async def list_keys(account_id: str, who: Principal = staff) -> Json:
        svc = deps.service(who.actor)
        await svc.get_account(account_id)  # 404 for an unknown account, not an empty list
        return {"account_id": account_id, "keys": await svc.list_keys(account_id)}

    @router.get("/keys/{key_id}", tags=["keys"], summary="Show a key (never its secret)")
    async def get_key(key_id: str, who: Principal = staff) -> Json:
        return await deps.service(who.actor).get_key(key_id)

    async def key_status(who: Principal, key_id: str, status: str) -> Json:
        out = await deps.service(who.actor).set_key_status(key_id, status)
        deps.changed()
        return out

    @router.post("/keys/{key_id}/disable", tags=["keys"], summary="Disable a key")
    async def disable_key(key_id: str, who: Principal = admin) -> Json:
        return await key_status(who, key_id, "disabled")

    @router.post("/keys/{key_id}/enable", tags=["keys"], summary="Enable a disabled key")
    async def enable_key(key_id: str, who: Principal = admin) -> Json:
        return await key_status(who, key_id, "enabled")

    @router.post("/keys/{key_id}/revoke", tags=["keys"], summary="Revoke a key for good")
    async def revoke_key(key_id: str, who: Principal = admin) -> Json:
        return await key_status(who, key_id, "revoked")

    # --- money and usage --------------------------------------------------------------------

    @router.post(
        "/accounts/{account_id}/credits",
        tags=["credits"],
        status_code=201,
        summary="Credit cash or a voucher grant (audited)",
    )
    async def credit(account_id: str, body: CreditCreate, who: Principal = staff) -> Json:
        key = None if body.idempotency_key is None else f"staff:{body.idempotency_key}"
        return await deps.service(who.actor).credit(
            account_id,
            body.amount,
            kind=body.kind,
            reason=body.reason,
            expires=body.expires,
            idempotency_key=key,
        )

    @router.get("/accounts/{account_id}/balance", tags=["credits"], summary="Balance")
    async def balance(account_id: str, who: Principal = staff) -> Json:
        return await deps.service(who.actor).balance(account_id)

    @router.get("/accounts/{account_id}/usage", tags=["usage"], summary="Newest usage records")
    async def usage(account_id: str, limit: int = UsageLimit, who: Principal = staff) -> Json:
        records = await deps.service(who.actor).list_usage(account_id, limit=limit)
        return {"account_id": account_id, "usage": records}

    @router.get("/usage/{trace_id}", tags=["usage"], summary="One usage record by trace ID")
    async def usage_record(trace_id: str, who: Principal = staff) -> Json:
        return await deps.service(who.actor).get_usage(trace_id)

    return router
