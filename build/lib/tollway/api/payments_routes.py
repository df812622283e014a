"""All payment routers, sharing one :class:`PaymentsContext` (providers built once)."""

from __future__ import annotations

from fastapi import APIRouter

from tollway.api.auth import Authenticator
from tollway.api.deps import ControlDeps
from tollway.api.payments_admin import admin_payments_router
from tollway.api.payments_me import me_payments_router
from tollway.api.webhooks import webhooks_router
from tollway.payments.context import PaymentsContext


def payment_routers(deps: ControlDeps, auth: Authenticator) -> list[APIRouter]:
    ctx = PaymentsContext.build(
        deps.engine, deps.box, deps.settings, on_change=deps.changed, write_holds=deps.write_holds
    )
    return [me_payments_router(ctx, auth), admin_payments_router(ctx, auth), webhooks_router(ctx)]
