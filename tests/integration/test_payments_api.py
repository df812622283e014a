"""The payments control API on SQLite and PostgreSQL: prices, quotes and FX refreshes, order
creation and validation, scoping to the caller's account, roles, manual orders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from payments_rig import Fakes, Rig, make_rig, running_fakes
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.audit import run_audit
from tollway.payments.fakes import ThreadedServer
from tollway.store.tables import audit_log


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture(scope="module")
def fx_source() -> Iterator[str]:
    async def rates(_: web.Request) -> web.Response:
        # Numbers as a real source sends them; Tollway reads them as exact decimals.
        return web.Response(text='{"base": "USD", "rates": {"CNY": 7.2345, "EUR": 0.9215, "USD": 1}}')

    app = web.Application()
    app.router.add_get("/latest", rates)
    with ThreadedServer(app) as server:
        yield f"{server.url}/latest"


@pytest.fixture
async def rig(engine: AsyncEngine, fakes: Fakes, fx_source: str, tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_rig(engine, fakes, tmp_path, fx_url=fx_source) as r:
        yield r


async def test_prices_quotes_and_fx(rig: Rig) -> None:
    _, token = await rig.customer("quote@example.com")
    options = await rig.ok("GET", "/api/me/topup", token)
    assert [c["currency"] for c in options["currencies"]] == ["USD"]
    usd = options["currencies"][0]
    assert usd["price_per_credit"] == "1" and usd["presets"][1] == {"amount": "10.00", "credits": "10"}
    assert {p["name"] for p in options["providers"]} == {"stripe", "alipay", "epay"}

    # CNY is not offered until an operator prices it.
    r = await rig.call("GET", "/api/me/topup/quote?currency=CNY&amount=10", token)
    assert r.status_code == 400 and r.json()["error"]["param"] == "currency"
    await rig.set_price("CNY", "7.2")
    quote = await rig.ok("GET", "/api/me/topup/quote?currency=CNY&amount=10.00", token)
    assert (quote["credits"], quote["price_per_credit"], quote["fx_rate"]) == ("1.388888888", "7.2", None)

    # FX mode: the operator's rate plus a margin, then refreshed from the configured source.
    priced = await rig.ok("PUT", "/api/admin/payments/prices/CNY", json={"fx_rate": "7.1", "margin": "0.05"})
    assert (priced["mode"], priced["price_per_credit"]) == ("fx", "7.455")
    refreshed = await rig.ok("POST", "/api/admin/payments/fx/refresh")
    assert refreshed["updated"] == {"CNY": "7.2345"}
    cny = next(
        c for c in (await rig.ok("GET", "/api/me/topup", token))["currencies"] if c["currency"] == "CNY"
    )
    assert (cny["fx_rate"], cny["fx_source"], cny["price_per_credit"]) == ("7.2345", "url", "7.596225")
    order = await rig.order(token, "alipay", "75.96", "CNY", "qr")
    assert (order["price_per_credit"], order["fx_rate"]) == ("7.596225", "7.2345")
    assert order["credits"] == "9.9997038"  # 75.96 / 7.596225 = 9.99970380024…, rounded down
    async with rig.engine.connect() as conn:
        actions = list((await conn.execute(select(audit_log.c.action))).scalars())
    assert actions.count("payments.price") == 2 and "payments.fx" in actions


async def test_order_validation_scoping_and_roles(rig: Rig) -> None:
    alice, alice_token = await rig.customer("alice@example.com")
    _, bob_token = await rig.customer("bob@example.com")
    support, support_token = await rig.customer("support@example.com", role="support")
    order = await rig.order(alice_token, "stripe", "10.00", "USD")
    assert order["pay_url"].startswith(rig.fakes.stripe.url) and order["state"] == "pending"
    session = rig.fakes.stripe.sessions[order["provider_ref"]]
    assert session["client_reference_id"] == session["metadata"]["order_number"] == order["order_number"]
    assert (
        session["success_url"]
        == f"http://tollway.test/pay/return/{order['order_number']}?session_id={{CHECKOUT_SESSION_ID}}"
    )

    def bad(body: dict[str, str], status: int, param: str) -> tuple[dict[str, str], int, str]:
        return body, status, param

    for body, status, param in (
        bad({"provider": "stripe", "amount": "0.50", "currency": "USD"}, 400, "amount"),  # below the minimum
        bad({"provider": "stripe", "amount": "10.001", "currency": "USD"}, 400, "amount"),
        bad({"provider": "stripe", "amount": "ten", "currency": "USD"}, 400, "amount"),
        bad({"provider": "alipay", "amount": "10.00", "currency": "USD"}, 400, "currency"),
        bad({"provider": "stripe", "amount": "10.00", "currency": "XYZ"}, 400, "currency"),
        bad({"provider": "manual", "amount": "10.00", "currency": "USD"}, 422, "provider"),
        bad({"provider": "epay", "amount": "10.00", "currency": "CNY", "method": "card"}, 400, "method"),
    ):
        r = await rig.call("POST", "/api/me/orders", alice_token, json=body)
        assert r.status_code == status and r.json()["error"]["param"] == param, (body, r.text)

    # Another account's order is "not found", never "forbidden".
    for method, path in (
        ("GET", f"/api/me/orders/{order['order_number']}"),
        ("POST", f"/api/me/orders/{order['order_number']}/refresh"),
    ):
        assert (await rig.call(method, path, bob_token)).status_code == 404
    assert (await rig.ok("GET", "/api/me/orders", bob_token))["orders"] == []
    assert [o["order_number"] for o in (await rig.ok("GET", "/api/me/orders", alice_token))["orders"]] == [
        order["order_number"]
    ]
    assert (await rig.call("GET", "/api/admin/orders", alice_token)).status_code == 403
    r = await rig.call("PUT", "/api/admin/payments/prices/USD", support_token, json={"price_per_credit": "2"})
    assert r.status_code == 403

    # Support finds the order, investigates and credits it by hand, with a reason.
    found = await rig.ok("GET", f"/api/admin/orders?account_id={alice}", support_token)
    assert [o["order_number"] for o in found["orders"]] == [order["order_number"]]
    no_reason = await rig.call(
        "POST", f"/api/admin/orders/{order['order_number']}/credit", support_token, json={}
    )
    assert no_reason.status_code == 422
    credited = await rig.ok(
        "POST",
        f"/api/admin/orders/{order['order_number']}/credit",
        support_token,
        json={"reason": "paid, webhook lost; checked the Stripe dashboard"},
    )
    assert credited["state"] == "credited"
    again = await rig.call(
        "POST", f"/api/admin/orders/{order['order_number']}/credit", support_token, json={"reason": "again"}
    )
    assert again.status_code == 400
    # The webhook arriving afterwards changes nothing.
    paid = rig.fakes.stripe.pay(order["provider_ref"])
    assert (await rig.stripe_event(rig.fakes.stripe.event("checkout.session.completed", paid))).json()[
        "outcome"
    ] == "already_credited"
    assert (await rig.balance(alice))["cash_nano"] == 10_000_000_000
    async with rig.engine.connect() as conn:
        rows = [
            tuple(r)
            for r in await conn.execute(select(audit_log.c.action, audit_log.c.actor, audit_log.c.before))
        ]
    assert ("order.credit", f"account:{support}", '{"state":"pending"}') in rows
    assert (await run_audit(rig.engine)).ok


async def test_manual_orders_and_the_return_page(rig: Rig) -> None:
    account, _ = await rig.customer("manual@example.com")
    order = await rig.ok(
        "POST",
        f"/api/admin/accounts/{account}/orders",
        json={"provider": "manual", "amount": "25.00", "currency": "USD"},
    )
    assert order["state"] == "pending" and order["pay_url"] is None
    page = await rig.client.get(f"/pay/return/{order['order_number']}", follow_redirects=True)
    assert page.status_code == 200 and "Waiting for the payment" in page.text
    await rig.ok(
        "POST", f"/api/admin/orders/{order['order_number']}/credit", json={"reason": "wire 42 received"}
    )
    page = await rig.client.get(f"/pay/return/{order['order_number']}", follow_redirects=True)
    assert "25 credits were added" in page.text
    shown = await rig.ok("GET", f"/api/admin/orders/{order['order_number']}")
    assert [e["kind"] for e in shown["events"]] == ["created", "pending", "paid", "credited"]
    assert (await rig.client.get("/pay/return/TW000000AAAAAAAAAA")).status_code == 404
    openapi = (await rig.client.get("/api/openapi.json")).json()
    for path in ("/webhooks/stripe", "/webhooks/alipay", "/webhooks/epay", "/api/me/orders", "/api/me/redeem",
                 "/api/me/vouchers", "/api/me/refunds"):  # fmt: skip
        assert path in openapi["paths"], path
    assert (await run_audit(rig.engine)).ok


async def test_unconfigured_provider(engine: AsyncEngine, fakes: Fakes, tmp_path: Path) -> None:
    async with make_rig(engine, fakes, tmp_path, epay_url=None) as rig:
        await rig.set_price("CNY", "7.2")
        _, token = await rig.customer("noepay@example.com")
        r = await rig.call(
            "POST", "/api/me/orders", token, json={"provider": "epay", "amount": "10", "currency": "CNY"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "payment_provider_not_configured"
        assert (await rig.client.get("/webhooks/epay?pid=1")).status_code == 400
        assert "epay" not in {p["name"] for p in (await rig.ok("GET", "/api/me/topup", token))["providers"]}
