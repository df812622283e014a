"""``/api/auth/login|logout`` and ``/api/me/...``: a customer's own account and nothing else.

Every query under ``/api/me`` is scoped by the session's account id, so another account's
key id or trace id is "not found" (404), never "forbidden": ids do not leak.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from tollway.api.auth import ApiLogin, Authenticator, Principal
from tollway.api.deps import ControlDeps
from tollway.api.schemas import KeyRename, Login, MyKeyCreate, joined
from tollway.api.sessions import delete_session
from tollway.errors import NotFound
from tollway.store import config_repo

Json = dict[str, Any]


def auth_router(deps: ControlDeps, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/auth", tags=["sign-in"])
    api_login = ApiLogin(deps)

    @router.post(
        "/login",
        summary="Sign in with email, password and (when two-factor is on) the code; returns a session token",
    )
    async def login(body: Login, request: Request) -> Json:
        ip = request.client.host if request.client else "?"
        return await api_login.login(body.email, body.password, body.totp, ip)

    @router.post("/logout", summary="End this session")
    async def logout(who: Principal = Depends(auth.session)) -> Json:
        assert who.token is not None
        async with deps.engine.begin() as conn:
            await delete_session(conn, who.token)
        return {"logged_out": True}

    return router


def me_router(deps: ControlDeps, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/me", tags=["me"])
    me = Depends(auth.session)

    def account_of(who: Principal) -> str:
        assert who.account_id is not None
        return who.account_id

    @router.get("", summary="My account")
    async def my_account(who: Principal = me) -> Json:
        return await deps.service(who.actor).get_account(account_of(who))

    @router.get("/balance", summary="My balance: cash, vouchers, holds, available")
    async def my_balance(who: Principal = me) -> Json:
        return await deps.service(who.actor).balance(account_of(who))

    @router.get("/usage", summary="My newest usage records")
    async def my_usage(
        limit: int = Query(50, ge=1, le=1000, description="Newest N records."),
        who: Principal = me,
    ) -> Json:
        records = await deps.service(who.actor).list_usage(
            account_of(who), limit=limit, include_operator=False
        )
        return {"usage": records}

    @router.get("/usage/{trace_id}", summary="One of my calls by trace ID, with its arithmetic")
    async def my_usage_record(trace_id: str, who: Principal = me) -> Json:
        return await deps.service(who.actor).get_usage(
            trace_id, account_id=account_of(who), include_operator=False
        )

    @router.get("/keys", summary="My API keys (never their secrets)")
    async def my_keys(who: Principal = me) -> Json:
        return {"keys": await deps.service(who.actor).list_keys(account_of(who))}

    @router.get("/keys/{key_id}", summary="One of my API keys")
    async def my_key(key_id: str, who: Principal = me) -> Json:
        return await deps.service(who.actor).get_key(key_id, account_id=account_of(who))

    @router.post("/keys", status_code=201, summary="Create a key (the only time its secret is shown)")
    async def create_my_key(body: MyKeyCreate, who: Principal = me) -> Json:
        async with deps.engine.connect() as conn:
            group = await config_repo.get_group_row(conn, body.group)
        if group is None or not group.visible:
            raise NotFound(f"group {body.group!r} does not exist", param="group")
        out = await deps.service(who.actor).create_key(
            account_of(who),
            name=body.name,
            group=body.group,
            expires=body.expires,
            models=joined(body.models),
            spend_cap=body.spend_cap,
            ip_allow=joined(body.ip_allow),
        )
        deps.changed()
        return out

    @router.post("/keys/{key_id}/revoke", summary="Revoke one of my keys for good")
    async def revoke_my_key(key_id: str, who: Principal = me) -> Json:
        out = await deps.service(who.actor).set_key_status(key_id, "revoked", account_id=account_of(who))
        deps.changed()
        return out

    @router.patch("/keys/{key_id}", summary="Rename one of my keys")
    async def rename_my_key(key_id: str, body: KeyRename, who: Principal = me) -> Json:
        out = await deps.service(who.actor).rename_key(key_id, body.name, account_id=account_of(who))
        deps.changed()
        return out

    @router.delete("/keys/{key_id}", summary="Delete one of my keys (revoked and hidden; its usage stays)")
    async def delete_my_key(key_id: str, who: Principal = me) -> Json:
        out = await deps.service(who.actor).set_key_status(key_id, "deleted", account_id=account_of(who))
        deps.changed()
        return out

    return router
