"""``/api/admin/groups|models|channels``: what is sold, at what price, served from where.

Staff (admin or support) may read; only admins may change. Channel credentials are
write-only: no route returns them, not even masked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from tollway.api.auth import Authenticator, Principal
from tollway.api.deps import ControlDeps
from tollway.api.schemas import (
    ChannelCreate,
    ChannelPatch,
    GroupCreate,
    GroupPatch,
    ModelPrice,
    joined,
    map_text,
)

Json = dict[str, Any]


def catalog_router(deps: ControlDeps, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/admin")
    staff = Depends(auth.staff)
    admin = Depends(auth.admin)

    # --- groups -----------------------------------------------------------------------------

    @router.get("/groups", tags=["groups"], summary="List groups")
    async def list_groups(who: Principal = staff) -> Json:
        return {"groups": await deps.service(who.actor).list_groups()}

    async def upsert_group(who: Principal, name: str, body: GroupPatch, create: bool) -> Json:
        out = await deps.service(who.actor).upsert_group(
            name,
            create=create,
            multiplier=body.multiplier,
            models=joined(body.models),
            rpm=body.rpm,
            tpm=body.tpm,
            concurrency=body.concurrency,
            total_concurrency=body.total_concurrency,
            label=body.label,
            visible=body.visible,
            sticky=body.sticky,
            reason=body.reason,
        )
        deps.changed()
        return out

    @router.post("/groups", tags=["groups"], status_code=201, summary="Create a group")
    async def create_group(body: GroupCreate, who: Principal = admin) -> Json:
        return await upsert_group(who, body.name, body, create=True)

    @router.patch("/groups/{name}", tags=["groups"], summary="Change a group")
    async def update_group(name: str, body: GroupPatch, who: Principal = admin) -> Json:
        return await upsert_group(who, name, body, create=False)

    # --- models -----------------------------------------------------------------------------

    @router.get("/models", tags=["models"], summary="List models with their current prices")
    async def list_models(who: Principal = staff) -> Json:
        return {"models": await deps.service(who.actor).list_models()}

    @router.put(
        "/models/{name}",
        tags=["models"],
        summary="Set a model's price from now on (categories not given are kept)",
    )
    async def set_model(name: str, body: ModelPrice, who: Principal = admin) -> Json:
        out = await deps.service(who.actor).set_model_price(
            name,
            input=body.input,
            output=body.output,
            cache_write_5m=body.cache_write_5m,
            cache_write_1h=body.cache_write_1h,
            cache_read=body.cache_read,
            per_call=body.per_call,
            provider=body.provider,
            context_window=body.context_window,
            max_output_tokens=body.max_output_tokens,
            reason=body.reason,
        )
        deps.changed()
        return out

    # --- channels ---------------------------------------------------------------------------

    @router.get("/channels", tags=["channels"], summary="List channels (no credentials)")
    async def list_channels(who: Principal = staff) -> Json:
        return {"channels": await deps.service(who.actor).list_channels()}

    async def upsert_channel(who: Principal, name: str, body: ChannelPatch, create: bool) -> Json:
        out = await deps.service(who.actor).upsert_channel(
            name,
            create=create,
            type=body.type,
            base_url=body.base_url,
            api_key=body.api_key,
            models=joined(body.models),
            groups_=joined(body.groups),
            priority=body.priority,
            weight=body.weight,
            model_map=map_text(body.model_map),
            enabled=body.enabled,
            connect_timeout=body.connect_timeout,
            first_byte_timeout=body.first_byte_timeout,
            idle_timeout=body.idle_timeout,
        )
        deps.changed()
        return out

    @router.post("/channels", tags=["channels"], status_code=201, summary="Create a channel")
    async def create_channel(body: ChannelCreate, who: Principal = admin) -> Json:
        return await upsert_channel(who, body.name, body, create=True)

    @router.patch("/channels/{name}", tags=["channels"], summary="Change a channel")
    async def update_channel(name: str, body: ChannelPatch, who: Principal = admin) -> Json:
        return await upsert_channel(who, name, body, create=False)

    return router
