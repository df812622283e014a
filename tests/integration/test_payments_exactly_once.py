"""Exactly once, on SQLite and PostgreSQL: the real SDKs against the fake providers.

A paid order is credited once however many times and in whatever order its notification
arrives, raced by the return page and the reconciliation job; TRADE_SUCCESS then
TRADE_FINISHED credits once; forged, stale, wrong-amount and wrong-merchant notifications are
refused with nothing credited; a pending order the provider reports paid is credited by
reconciliation without any webhook.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from payments_rig import Fakes, Rig, make_rig, running_fakes
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.audit import run_audit
from tollway.errors import InvalidRequest
from tollway.payments.crediting import Crediting
from tollway.payments.fakes.keys import KeyPair
from tollway.payments.reconcile import Reconciler
from tollway.store.tables import payment_notifications


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture
async def rig(engine: AsyncEngine, fakes: Fakes, tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_rig(engine, fakes, tmp_path) as r:
        await r.set_price("CNY", "7.2")
        yield r


async def _paid_delivery(rig: Rig, provider: str, token: str) -> tuple[dict[str, Any], Any]:
    """An order paid at the provider, and a coroutine factory delivering its paid notification."""
    if provider == "stripe":
        order = await rig.order(token, "stripe", "10.00", "USD")
        session = rig.fakes.stripe.pay(order["provider_ref"])
        event = rig.fakes.stripe.event("checkout.session.completed", session)
        return order, lambda: rig.stripe_event(event)
    if provider == "alipay":
        order = await rig.order(token, "alipay", "72.00", "CNY", "qr")
        rig.fakes.alipay.pay(order["order_number"])
        params = rig.fakes.alipay.notification(order["order_number"])
        return order, lambda: rig.alipay_notify(params)
    order = await rig.order(token, "epay", "72.00", "CNY", "alipay")
    async with httpx2.AsyncClient() as http:  # the customer opens the cashier
        assert (await http.get(order["pay_url"])).status_code == 200
    rig.fakes.epay.pay(order["order_number"])
    params = rig.fakes.epay.notification(order["order_number"])
    return order, lambda: rig.epay_notify(params)


@pytest.mark.parametrize("provider", ["stripe", "alipay", "epay"])
async def test_five_concurrent_deliveries_return_page_and_reconciliation_credit_once(
    rig: Rig, provider: str
) -> None:
    account, token = await rig.customer(f"{provider}@example.com")
    order, deliver = await _paid_delivery(rig, provider, token)
    assert order["state"] == "pending" and order["credits"] == "10"

    async def return_page() -> httpx2.Response:
        return await rig.client.get(
            f"/pay/return/{order['order_number']}", headers={"Accept": "application/json"}
        )

    async def reconcile() -> dict[str, Any]:
        return await Reconciler(rig.ctx).run()

    # Out of order: the return page and reconciliation race the first deliveries.
    jobs: list[Any] = [
        return_page(),
        deliver(),
        reconcile(),
        deliver(),
        deliver(),
        return_page(),
        deliver(),
        deliver(),
    ]
    results = await asyncio.gather(*jobs)
    for r in results:
        if isinstance(r, httpx2.Response):
            assert r.status_code == 200, r.text
            if provider != "stripe" and "/webhooks/" in str(r.url):
                assert r.text == "success"  # what Alipay and EPay need to stop retrying

    assert await rig.topups(order["order_number"]) == 1
    balance = await rig.balance(account)
    assert balance["cash_nano"] == 10_000_000_000
    shown = await rig.ok("GET", f"/api/me/orders/{order['order_number']}", token)
    assert shown["state"] == "credited" and shown["credited_at"]
    assert [e["kind"] for e in shown["events"]].count("credited") == 1
    async with rig.engine.connect() as conn:  # the notification is stored once
        n = (await conn.execute(select(func.count()).select_from(payment_notifications))).scalar_one()
    assert n == 1
    # A late duplicate a day later is still a no-op.
    assert (await deliver()).status_code == 200
    assert await rig.topups(order["order_number"]) == 1
    report = await run_audit(rig.engine)
    assert report.ok, report.findings


async def test_trade_success_then_trade_finished_credits_once(rig: Rig) -> None:
    account, token = await rig.customer("finished@example.com")
    for in_order in (True, False):  # as Alipay sends them, and TRADE_FINISHED overtaking
        order = await rig.order(token, "alipay", "36.00", "CNY", "page")
        assert order["pay_url"].startswith(rig.fakes.alipay.gateway)
        async with httpx2.AsyncClient() as http:  # the buyer opens the cashier page
            assert (await http.get(order["pay_url"])).status_code == 200
        rig.fakes.alipay.pay(order["order_number"])
        success = rig.fakes.alipay.notification(order["order_number"])
        rig.fakes.alipay.finish(order["order_number"])
        finished = rig.fakes.alipay.notification(order["order_number"])
        assert success["trade_status"] == "TRADE_SUCCESS" and finished["trade_status"] == "TRADE_FINISHED"
        sequence = [success, finished] if in_order else [finished, success, finished]
        for params in sequence:
            r = await rig.alipay_notify(params)
            assert r.status_code == 200 and r.text == "success"
        assert await rig.topups(order["order_number"]) == 1
    assert (await rig.balance(account))["cash_nano"] == 2 * 5_000_000_000
    assert (await run_audit(rig.engine)).ok


async def _refused(rig: Rig, account: str, order: dict[str, Any], response: httpx2.Response) -> None:
    assert response.status_code == 400, response.text
    assert await rig.topups(order["order_number"]) == 0
    assert (await rig.balance(account))["cash_nano"] == 0
    shown = await rig.ok("GET", f"/api/admin/orders/{order['order_number']}")
    assert shown["state"] == "pending"
    assert shown["events"][-1]["kind"] == "refused", shown["events"]


async def test_forged_stale_wrong_amount_wrong_merchant_are_refused(rig: Rig) -> None:
    account, token = await rig.customer("refused@example.com")
    stripe, alipay, epay = rig.fakes.stripe, rig.fakes.alipay, rig.fakes.epay

    # Stripe: forged signature, stale timestamp, wrong amount (signed correctly), no signature.
    order = await rig.order(token, "stripe", "10.00", "USD")
    session = stripe.pay(order["provider_ref"])
    event = stripe.event("checkout.session.completed", session)
    await _refused(rig, account, order, await rig.stripe_event(event, secret="whsec_forged"))
    await _refused(rig, account, order, await rig.stripe_event(event, timestamp=int(time.time()) - 3600))
    cheap = stripe.event("checkout.session.completed", {**session, "amount_total": 100})
    await _refused(rig, account, order, await rig.stripe_event(cheap))
    other = stripe.event("checkout.session.completed", {**session, "id": "cs_test_someone_else"})
    await _refused(rig, account, order, await rig.stripe_event(other))
    unsigned = await rig.client.post("/webhooks/stripe", content=b'{"id": "evt_x", "type": "x"}')
    assert unsigned.status_code == 400
    assert (await rig.stripe_event(event)).status_code == 200  # the genuine one still credits
    assert await rig.topups(order["order_number"]) == 1

    # Alipay: forged (signed by another key), wrong amount, wrong app (merchant), wrong seller.
    account2, token2 = await rig.customer("refused2@example.com")
    order = await rig.order(token2, "alipay", "72.00", "CNY", "qr")
    alipay.pay(order["order_number"])
    forged = alipay.notification(order["order_number"], keys=KeyPair.generate())
    await _refused(rig, account2, order, await rig.alipay_notify(forged))
    tampered = {**alipay.notification(order["order_number"]), "total_amount": "0.01"}  # changed after signing
    await _refused(rig, account2, order, await rig.alipay_notify(tampered))
    wrong_amount = alipay.notification(order["order_number"], overrides={"total_amount": "7.20"})
    await _refused(rig, account2, order, await rig.alipay_notify(wrong_amount))
    wrong_app = alipay.notification(order["order_number"], overrides={"app_id": "2021999999999999"})
    await _refused(rig, account2, order, await rig.alipay_notify(wrong_app))
    wrong_seller = alipay.notification(order["order_number"], overrides={"seller_id": "2088999999999999"})
    await _refused(rig, account2, order, await rig.alipay_notify(wrong_seller))
    assert (await rig.alipay_notify(alipay.notification(order["order_number"]))).text == "success"
    assert await rig.topups(order["order_number"]) == 1

    # EPay: forged key, wrong money, wrong merchant (pid), GET and POST.
    account3, token3 = await rig.customer("refused3@example.com")
    order = await rig.order(token3, "epay", "72.00", "CNY", "wxpay")
    async with httpx2.AsyncClient() as http:
        await http.get(order["pay_url"])
    epay.pay(order["order_number"])
    await _refused(
        rig, account3, order, await rig.epay_notify(epay.notification(order["order_number"], key="x"))
    )
    money = epay.notification(order["order_number"], overrides={"money": "1.00"})
    await _refused(rig, account3, order, await rig.epay_notify(money, method="POST"))
    pid = epay.notification(order["order_number"], overrides={"pid": "9999"})
    await _refused(rig, account3, order, await rig.epay_notify(pid))
    assert (await rig.epay_notify(epay.notification(order["order_number"]), method="POST")).text == "success"
    assert await rig.topups(order["order_number"]) == 1

    report = await run_audit(rig.engine)
    assert report.ok, report.findings


async def test_reconciliation_credits_a_paid_order_without_any_webhook(rig: Rig) -> None:
    account, token = await rig.customer("quiet@example.com")
    stripe_order = await rig.order(token, "stripe", "10.00", "USD")
    alipay_order = await rig.order(token, "alipay", "72.00", "CNY", "qr")
    rig.fakes.stripe.pay(stripe_order["provider_ref"])
    rig.fakes.alipay.pay(alipay_order["order_number"])
    summary = await Reconciler(rig.ctx).run()
    assert summary["orders"].get("credited") == 2, summary
    assert (await rig.balance(account))["cash_nano"] == 20_000_000_000
    for order in (stripe_order, alipay_order):
        shown = await rig.ok("GET", f"/api/admin/orders/{order['order_number']}")
        assert shown["state"] == "credited"
        assert any(e["kind"] == "credited" and e["source"] == "reconcile" for e in shown["events"])
    again = await Reconciler(rig.ctx).run()  # nothing left to do
    assert again["orders_checked"] == 0
    assert (await run_audit(rig.engine)).ok


async def test_abandoned_orders_expire_and_a_late_payment_still_credits(
    engine: AsyncEngine, fakes: Fakes, tmp_path: Path
) -> None:
    async with make_rig(engine, fakes, tmp_path, order_ttl_s=0) as rig:
        await rig.set_price("CNY", "7.2")
        account, token = await rig.customer("late@example.com")
        abandoned = await rig.order(token, "stripe", "5.00", "USD")
        late = await rig.order(token, "alipay", "7.20", "CNY", "qr")
        summary = await Reconciler(rig.ctx).run()
        assert summary["orders"] == {"expired": 2}, summary
        assert fakes.stripe.sessions[abandoned["provider_ref"]]["status"] == "expired"
        assert (await rig.ok("GET", f"/api/me/orders/{late['order_number']}", token))["state"] == "expired"
        # The QR code was paid anyway before Alipay closed it: the notification still credits.
        fakes.alipay.trades[late["order_number"]]["trade_status"] = "WAIT_BUYER_PAY"
        fakes.alipay.pay(late["order_number"])
        r = await rig.alipay_notify(fakes.alipay.notification(late["order_number"]))
        assert r.text == "success"
        shown = await rig.ok("GET", f"/api/me/orders/{late['order_number']}", token)
        assert shown["state"] == "credited" and shown["credits"] == "1"
        assert (await rig.balance(account))["cash_nano"] == 1_000_000_000
        assert (await run_audit(rig.engine)).ok


async def test_decline_reasons_are_plain_words_and_async_failures_fail(rig: Rig) -> None:
    _, token = await rig.customer("declined@example.com")
    order = await rig.order(token, "stripe", "10.00", "USD")
    rig.fakes.stripe.decline(order["provider_ref"], "insufficient_funds")
    shown = await rig.ok("POST", f"/api/me/orders/{order['order_number']}/refresh", token)
    assert shown["state"] == "pending"
    assert shown["failure_reason"] == "Your card has insufficient funds. Try another card."

    delayed = await rig.order(token, "stripe", "20.00", "USD")
    session = rig.fakes.stripe.pay(delayed["provider_ref"], delayed=True)
    r = await rig.stripe_event(rig.fakes.stripe.event("checkout.session.completed", session))
    assert r.json()["outcome"] == "noted"  # unpaid yet: a bank debit in progress
    failed = rig.fakes.stripe.settle(delayed["provider_ref"], succeeded=False)
    r = await rig.stripe_event(rig.fakes.stripe.event("checkout.session.async_payment_failed", failed))
    assert r.json()["outcome"] == "failed"
    shown = await rig.ok("GET", f"/api/me/orders/{delayed['order_number']}", token)
    assert shown["state"] == "failed" and "did not complete" in shown["failure_reason"]

    ok = await rig.order(token, "stripe", "30.00", "USD")
    session = rig.fakes.stripe.pay(ok["provider_ref"], delayed=True)
    settled = rig.fakes.stripe.settle(ok["provider_ref"])
    r = await rig.stripe_event(rig.fakes.stripe.event("checkout.session.async_payment_succeeded", settled))
    assert r.json()["outcome"] == "credited"
    assert (await run_audit(rig.engine)).ok


async def test_any_mix_distinct_notifications_staff_return_page_and_reconciliation(rig: Rig) -> None:
    """Distinct notifications (new ids, so the dedupe table lets each through) race a staff
    credit, the return page and reconciliation: the conditional state change alone keeps it once."""
    account, token = await rig.customer("mix@example.com")
    order = await rig.order(token, "alipay", "72.00", "CNY", "qr")
    rig.fakes.alipay.pay(order["order_number"])
    notes = [rig.fakes.alipay.notification(order["order_number"]) for _ in range(4)]
    crediting = Crediting(rig.ctx, "cli:support")

    async def staff() -> str:
        try:
            await crediting.credit_manually(order["order_number"], reason="customer called")
        except InvalidRequest:
            return "late"
        return "staff"

    results = await asyncio.gather(
        *(rig.alipay_notify(p) for p in notes),
        rig.client.get(f"/pay/return/{order['order_number']}", follow_redirects=True),
        Reconciler(rig.ctx).run(),
        staff(),
    )
    assert all(r.status_code == 200 for r in results[:5] if isinstance(r, httpx2.Response))
    assert await rig.topups(order["order_number"]) == 1
    assert (await rig.balance(account))["cash_nano"] == 10_000_000_000
    async with rig.engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(payment_notifications))).scalar_one()
    assert stored == 4  # each distinct notification is recorded once
    report = await run_audit(rig.engine)
    assert report.ok, report.findings
