"""Provider webhooks and the return page. No bearer token: each notification is verified by
its provider's scheme over the raw body. A refused notification gets a 400 (and is logged
and recorded on the order it names); a verified one is acknowledged the way its provider
expects (Stripe: any 2xx; Alipay and EPay: the literal ``success``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from tollway.payments.context import PaymentsContext
from tollway.payments.errors import NotificationRefused
from tollway.payments.notify import NotifyService
from tollway.payments.provider import IncomingRequest
from tollway.payments.views import public_order

Json = dict[str, Any]
FORM = "application/x-www-form-urlencoded"
# Alipay and EPay read the literal body: `success`, or `fail` (with a 400) when refused.
TEXT_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Refused (bad signature, unknown order, amount or merchant mismatch): `fail`",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


async def incoming(request: Request) -> IncomingRequest:
    body = await request.body()
    query = request.url.query
    params = dict(parse_qsl(query, keep_blank_values=True))
    if request.method == "POST" and request.headers.get("content-type", "").startswith(FORM):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    headers = {k.lower(): v for k, v in request.headers.items()}
    return IncomingRequest(request.method, headers, query, body, params)


def webhooks_router(ctx: PaymentsContext) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    notify = NotifyService(ctx)

    @router.post("/webhooks/stripe", summary="Stripe events (Stripe-Signature over the raw body)")
    async def stripe_webhook(request: Request) -> Response:
        try:
            outcome = await notify.handle("stripe", await incoming(request))
        except NotificationRefused as exc:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message, "param": None}}, 400)
        return JSONResponse({"received": True, "outcome": outcome})

    async def text_webhook(provider: str, request: Request) -> Response:
        try:
            await notify.handle(provider, await incoming(request))
        except NotificationRefused:
            return PlainTextResponse("fail", status_code=400)
        return PlainTextResponse("success")

    @router.post(
        "/webhooks/alipay",
        summary="Alipay async notify (RSA2); answered `success`",
        response_class=PlainTextResponse,
        responses=TEXT_ANSWERS,
    )
    async def alipay_webhook(request: Request) -> Response:
        return await text_webhook("alipay", request)

    @router.get(
        "/webhooks/epay",
        summary="EPay notify by GET (MD5); answered `success`",
        response_class=PlainTextResponse,
        responses=TEXT_ANSWERS,
    )
    async def epay_webhook_get(request: Request) -> Response:
        return await text_webhook("epay", request)

    @router.post(
        "/webhooks/epay",
        summary="EPay notify by POST (MD5); answered `success`",
        response_class=PlainTextResponse,
        responses=TEXT_ANSWERS,
    )
    async def epay_webhook_post(request: Request) -> Response:
        return await text_webhook("epay", request)

    @router.get(
        "/pay/return/{order_number}",
        summary="Where the provider sends the customer back (JSON with Accept: application/json)",
        responses={303: {"description": "A browser is sent to /console/payment/{order_number}"}},
    )
    async def return_page(order_number: str, request: Request) -> Response:
        order = await notify.confirm(order_number, source="return")
        if "application/json" in request.headers.get("accept", ""):
            # No session here: only what the order number tells its holder (not the account).
            return JSONResponse(public_order(order))
        # The customer's page is the console's (translated, styled); it needs no session.
        cancelled = "?cancelled=1" if request.query_params.get("cancelled") == "1" else ""
        target = f"/console/payment/{quote(order['order_number'])}{cancelled}"
        return RedirectResponse(target, status_code=303)

    return router
