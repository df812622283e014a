"""A customer's order and refund request pages, scoped to the signed-in account: another
account's order number or refund request id is 404, as in ``/api/me``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.console.web import Web
from tollway.payments.context import PaymentsContext
from tollway.payments.orders import OrderService
from tollway.payments.refunds import RefundService


def customer_money_routes(router: APIRouter, web: Web, ctx: PaymentsContext) -> None:
    @router.get("/orders/{order_number}")
    async def order(request: Request, order_number: str) -> Response:
        v = await web.viewer(request)
        doc = await OrderService(ctx, v.actor).show(order_number, account_id=v.account_id)
        return web.render(request, "order.html", me=v, o=doc, staff_view=False)

    @router.get("/refunds/{request_id}")
    async def refund_request(request: Request, request_id: str) -> Response:
        v = await web.viewer(request)
        doc = await RefundService(ctx, v.actor).get(request_id, account_id=v.account_id)
        return web.render(request, "refund.html", me=v, r=doc)
