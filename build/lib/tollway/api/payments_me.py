"""``/api/me/...`` for payments: top-up options and quotes, orders, redemption codes, vouchers
and refund requests, all scoped to the signed-in account (another account's order is 404)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from tollway.api.auth import Authenticator, Principal
from tollway.api.payments_schemas import OrderCreate, Redeem, RefundAsk
from tollway.payments.codes import CodeService
from tollway.payments.context import PaymentsContext
from tollway.payments.notify import NotifyService
from tollway.payments.orders import OrderService
from tollway.payments.refunds import RefundService
from tollway.payments.vouchers import VoucherService

Json = dict[str, Any]
CUSTOMER_EVENT_FIELDS = ("at", "kind", "source")


def _me(who: Principal) -> str:
    assert who.account_id is not None
    return who.account_id


def me_payments_router(ctx: PaymentsContext, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/me", tags=["me: payments"])
    me = Depends(auth.session)

    @router.get("/topup", summary="Top-up options: currencies, live price per credit, presets, providers")
    async def topup_options(who: Principal = me) -> Json:
        return await OrderService(ctx, who.actor).options()

    @router.get("/topup/quote", summary="What an amount buys, at the rate in force now")
    async def topup_quote(
        currency: str = Query(..., min_length=3, max_length=3),
        amount: str = Query(..., min_length=1, max_length=32),
        who: Principal = me,
    ) -> Json:
        return await OrderService(ctx, who.actor).quote(currency, amount)

    @router.post("/orders", status_code=201, summary="Start a top-up; pay at pay_url (or the QR code)")
    async def create_order(body: OrderCreate, who: Principal = me) -> Json:
        return await OrderService(ctx, who.actor).create(
            _me(who), provider=body.provider, amount=body.amount, currency=body.currency, method=body.method
        )

    @router.get("/orders", summary="My orders, newest first")
    async def my_orders(limit: int = Query(50, ge=1, le=1000), who: Principal = me) -> Json:
        return {"orders": await OrderService(ctx, who.actor).list_orders(account_id=_me(who), limit=limit)}

    @router.get("/orders/{order_number}", summary="One of my orders, with its history and refunds")
    async def my_order(order_number: str, who: Principal = me) -> Json:
        doc = await OrderService(ctx, who.actor).show(order_number, account_id=_me(who))
        doc["events"] = [{k: e[k] for k in CUSTOMER_EVENT_FIELDS} for e in doc["events"]]
        return doc

    @router.post("/orders/{order_number}/refresh", summary="Ask the provider about my order now")
    async def refresh_order(order_number: str, who: Principal = me) -> Json:
        return await NotifyService(ctx).confirm(order_number, source="customer", account_id=_me(who))

    @router.post("/redeem", summary="Redeem a code (voucher card)")
    async def redeem(body: Redeem, who: Principal = me) -> Json:
        return await CodeService(ctx, who.actor).redeem(_me(who), body.code)

    @router.get("/vouchers", summary="My voucher grants: granted, spent, remaining, expiry")
    async def vouchers(who: Principal = me) -> Json:
        return {"vouchers": await VoucherService(ctx, who.actor).list_grants(_me(who))}

    @router.post("/refunds", status_code=201, summary="Ask for a refund of unspent cash (with a reason)")
    async def request_refund(body: RefundAsk, who: Principal = me) -> Json:
        return await RefundService(ctx, who.actor).request(_me(who), reason=body.reason, amount=body.amount)

    @router.get("/refunds/{request_id}", summary="One of my refund requests: status and where the money goes")
    async def my_refund(request_id: str, who: Principal = me) -> Json:
        found = await RefundService(ctx, who.actor).get(request_id, account_id=_me(who))
        return {k: v for k, v in found.items() if k != "decided_by"}

    @router.get("/refunds", summary="My refund requests: status, amounts and where the money goes")
    async def my_refunds(who: Principal = me) -> Json:
        requests = await RefundService(ctx, who.actor).list_requests(account_id=_me(who))
        return {"refunds": [{k: v for k, v in r.items() if k != "decided_by"} for r in requests]}

    return router
