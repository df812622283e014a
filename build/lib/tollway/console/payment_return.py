"""Where a payment provider's return page lands (``/pay/return/{order}`` checks the order
with the provider, then redirects here). Needs no session: the return from a provider is a
cross-site navigation, on which the ``SameSite=Strict`` session cookie is not sent. It shows
only what the order number already tells its holder: state, amount, credits, decline reason."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.console.web import Web
from tollway.payments.context import PaymentsContext
from tollway.payments.orders import OrderService


def payment_return_routes(router: APIRouter, web: Web, ctx: PaymentsContext) -> None:
    @router.get("/payment/{order_number}")
    async def payment_return(request: Request, order_number: str) -> Response:
        order = await OrderService(ctx, "customer").show(order_number)
        cancelled = request.query_params.get("cancelled") == "1"
        return web.render(request, "payment_return.html", me=None, o=order, cancelled=cancelled)
