"""The fake Stripe's hosted Checkout page, for browser tests: the customer sees the amount,
pays or has the card declined, and Stripe sends the signed webhook to the merchant (when
``FakeStripe.webhook_url`` is set) before redirecting to the ``success_url``, as Stripe does."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from tollway.payments.amounts import format_minor
from tollway.payments.stripe.declines import decline_message

if TYPE_CHECKING:
    from tollway.payments.fakes.stripe_fake import FakeStripe

DECLINES = ("insufficient_funds", "expired_card", "do_not_honor", "generic_decline")


def add_checkout_pages(app: web.Application, fake: FakeStripe) -> None:
    async def deliver(event: dict[str, Any]) -> None:
        if not fake.webhook_url:
            return
        body, signature = fake.signed(event)
        headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(fake.webhook_url, data=body, headers=headers) as resp,
        ):
            fake.deliveries.append((event["type"], resp.status))

    def page(session: dict[str, Any], error: str | None = None) -> web.Response:
        sid = html.escape(session["id"])
        amount = format_minor(int(session["amount_total"]), str(session["currency"]).upper())
        options = "".join(f"<option>{d}</option>" for d in DECLINES)
        notice = f'<p id="card-error" style="color:#b00">{html.escape(error)}</p>' if error else ""
        cancel = html.escape(session.get("cancel_url") or "")
        body = (
            "<!doctype html><meta charset=utf-8><title>Fake Stripe Checkout</title>"
            f"<h1>Pay <span id=amount>{amount} {html.escape(session['currency'].upper())}</span></h1>"
            f"{notice}"
            f'<form method=post action="/checkout/{sid}/pay"><button id=pay>Pay</button></form>'
            f'<form method=post action="/checkout/{sid}/decline"><select name=code>{options}</select>'
            "<button id=decline>Use a card that is declined</button></form>"
            f'<p><a id=back href="{cancel}">Back to the merchant</a></p>'
        )
        return web.Response(text=body, content_type="text/html")

    def session_of(request: web.Request) -> dict[str, Any]:
        session = fake.sessions.get(request.match_info["id"])
        if session is None:
            raise web.HTTPNotFound(text="No such checkout session")
        return session

    async def show(request: web.Request) -> web.Response:
        return page(session_of(request))

    async def pay(request: web.Request) -> web.Response:
        session = session_of(request)
        if session["status"] != "open":
            return page(session, f"This checkout session is {session['status']}.")
        paid = fake.pay(session["id"])
        await deliver(fake.event("checkout.session.completed", paid))
        target = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])
        raise web.HTTPSeeOther(target)

    async def decline(request: web.Request) -> web.Response:
        session = session_of(request)
        code = str((await request.post()).get("code") or "generic_decline")
        intent = fake.decline(session["id"], code)
        await deliver(fake.event("payment_intent.payment_failed", intent))
        return page(session, decline_message(intent["last_payment_error"]) or "Your card was declined.")

    app.router.add_get("/checkout/{id}", show)
    app.router.add_post("/checkout/{id}/pay", pay)
    app.router.add_post("/checkout/{id}/decline", decline)
