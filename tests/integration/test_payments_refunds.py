"""Refunds on SQLite and PostgreSQL: the customer asks, staff decide, each payment is refunded
through its provider's refund call (newest first), the ledger posts when the provider
confirms, cash is held while it is in flight, and the audit passes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from payments_rig import Fakes, Rig, make_rig, pay_alipay, pay_stripe, running_fakes
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.audit import run_audit
from tollway.billing.biller import Biller, CallFacts
from tollway.billing.wallets import WalletCache
from tollway.billing.writer import SettlementWriter
from tollway.errors import InsufficientBalance
from tollway.ledger import chart
from tollway.money import Ratio
from tollway.payments.reconcile import Reconciler
from tollway.pricing.book import PriceBook
from tollway.pricing.model import PriceEntry, Usage
from tollway.store import ledger_repo
from tollway.store.tables import audit_log

TOKENS_PER_CREDIT = 40_000  # claude-opus-4-5 output: $25 per million tokens


@dataclass
class World:
    rig: Rig
    biller: Biller
    entry: PriceEntry

    async def spend(self, owner: str, credits: int, trace: str) -> None:
        facts = CallFacts(
            trace, owner, "key-1", "chat.completions", "claude-opus-4-5", "claude-opus-4-5",
            "default", Ratio.parse("1"), False, "127.0.0.1", datetime.now(UTC),
        )  # fmt: skip
        tokens = credits * TOKENS_PER_CREDIT
        await self.biller.admit(
            facts, self.entry, input_upper=0, input_expected=0, max_output=tokens, spend_cap_nano=None
        )
        await self.biller.settle(facts, self.entry, Usage(output_tokens=tokens), latency_ms=1, ttft_ms=1)

    async def reload(self, owner: str) -> None:
        """What the server's refresh loop does when another path posted to the ledger."""
        await self.biller.writer.run_exclusive(lambda: self.biller.wallets.reload({owner}))


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture
async def world(engine: AsyncEngine, fakes: Fakes, tmp_path: Path) -> AsyncIterator[World]:
    fakes.stripe.refund_status = "succeeded"
    fakes.alipay.refund_failure = None
    fakes.epay.refund_ok = True
    async with make_rig(engine, fakes, tmp_path) as rig:
        await rig.set_price("CNY", "7.2")
        async with engine.begin() as conn:
            platform = await ledger_repo.ensure_platform_accounts(conn)
        writer = SettlementWriter(engine, batch_size=64, interval_ms=2)
        writer.start()
        biller = Biller(
            WalletCache(engine), writer, revenue_account_id=platform[chart.USAGE_REVENUE],
            hold_timeout_s=60, settlement_deadline_s=10,
        )  # fmt: skip
        entry = PriceBook.bundled().lookup("claude-opus-4-5", datetime.now(UTC))
        assert entry is not None
        yield World(rig, biller, entry)
        await writer.stop()


async def test_stripe_then_alipay_spent_part_refunds_newest_first_through_each_provider(world: World) -> None:
    rig = world.rig
    account, token = await rig.customer("refund@example.com")
    stripe_order = await pay_stripe(rig, token, "10.00")  # 10 credits
    alipay_order = await pay_alipay(rig, token, "72.00")  # 10 credits at ¥7.20, paid later
    await rig.ok(
        "POST",
        f"/api/admin/accounts/{account}/vouchers",
        json={"amount": "3", "expires": "2099-01-01", "reason": "sorry for the outage"},
    )
    await world.spend(account, 8, "trace-spend-1")  # 3 from the voucher, then 5 of cash
    assert (await rig.balance(account))["cash_nano"] == 15_000_000_000

    asked = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "project cancelled"})
    assert asked["state"] == "requested" and asked["refundable_now"] == "15"
    queue = await rig.ok("GET", "/api/admin/refunds?state=requested")
    assert [r["id"] for r in queue["refunds"]] == [asked["id"]]

    done = await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve", json={"reason": "policy ok"})
    assert done["state"] == "completed", done
    lines = {r["provider"]: r for r in done["refunds"]}
    assert lines["alipay"]["amount"] == "72.00" and lines["alipay"]["credits"] == "10"
    assert lines["stripe"]["amount"] == "5.00" and lines["stripe"]["credits"] == "5"
    assert all(r["state"] == "succeeded" for r in done["refunds"])
    # Newest payment first: the Alipay refund was made before the Stripe one.
    assert [r["provider"] for r in done["refunds"]] == ["alipay", "stripe"]

    # Through each provider's refund call.
    assert [
        r["refund_amount"]
        for r in rig.fakes.alipay.refunds.values()
        if r["out_trade_no"] == alipay_order["order_number"]
    ] == ["72.00"]
    stripe_refunds = [
        r
        for r in rig.fakes.stripe.refunds.values()
        if r["metadata"]["order_number"] == stripe_order["order_number"]
    ]
    assert [r["amount"] for r in stripe_refunds] == [500]

    balance = await rig.balance(account)
    assert (balance["cash_nano"], balance["voucher_nano"]) == (0, 0)
    assert (await rig.ok("GET", f"/api/me/orders/{alipay_order['order_number']}", token))[
        "state"
    ] == "refunded"
    shown = await rig.ok("GET", f"/api/me/orders/{stripe_order['order_number']}", token)
    assert shown["state"] == "partially_refunded" and shown["refunds"][0]["amount"] == "5.00"
    mine = await rig.ok("GET", "/api/me/refunds", token)
    assert "Alipay account" in mine["refunds"][0]["refunds"][0]["destination"]
    one = await rig.ok("GET", f"/api/me/refunds/{asked['id']}", token)
    assert one["state"] == "completed" and "decided_by" not in one
    assert [r["provider"] for r in one["refunds"]] == ["alipay", "stripe"]
    _, stranger = await rig.customer("stranger@example.com")
    r = await rig.call("GET", f"/api/me/refunds/{asked['id']}", stranger)
    assert r.status_code == 404 and r.json()["error"]["param"] == "request_id"
    async with rig.engine.connect() as conn:
        actions = set((await conn.execute(select(audit_log.c.action))).scalars())
    assert {"refund.approve", "credit.voucher"} <= actions
    report = await run_audit(rig.engine)
    assert report.ok, report.findings
    # Nothing is left to refund: a new request is refused.
    r = await rig.call("POST", "/api/me/refunds", token, json={"reason": "again"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "amount"


async def test_partial_refunds_at_the_payment_rate_never_more_than_paid(world: World) -> None:
    rig = world.rig
    account, token = await rig.customer("partial@example.com")
    order = await pay_alipay(rig, token, "10.00")  # ¥10 at ¥7.2 = 1.388888888 credits
    assert order["credits"] == "1.388888888"
    first = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "some", "amount": "1"})
    first = await rig.ok("POST", f"/api/admin/refunds/{first['id']}/approve")
    assert [(r["amount"], r["credits"]) for r in first["refunds"]] == [("7.20", "1")]
    rest = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "rest", "amount": "50"})
    rest = await rig.ok("POST", f"/api/admin/refunds/{rest['id']}/approve")
    assert [(r["amount"], r["credits"]) for r in rest["refunds"]] == [("2.80", "0.388888888")]
    trade = rig.fakes.alipay.trades[order["order_number"]]
    assert trade["refunded"] == trade["total_amount"] == "10.00"
    assert (await rig.balance(account))["cash_nano"] == 0
    assert (await run_audit(rig.engine)).ok


async def test_cash_is_held_while_a_refund_is_in_flight(world: World) -> None:
    rig = world.rig
    account, token = await rig.customer("inflight@example.com")
    await pay_stripe(rig, token, "10.00")
    rig.fakes.stripe.refund_status = "pending"
    asked = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "too much", "amount": "6"})
    doc = await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve")
    assert doc["state"] == "processing" and doc["refunds"][0]["state"] == "pending"
    balance = await rig.balance(account)
    assert balance["cash_nano"] == 4_000_000_000  # the 6 credits in flight cannot be spent
    await world.reload(account)
    with pytest.raises(InsufficientBalance):
        await world.spend(account, 5, "trace-too-much")
    assert (await run_audit(rig.engine)).ok  # a pending refund: its hold, nothing posted

    # Stripe confirms by webhook; a replay of the event changes nothing.
    refund_id = next(
        iter(
            r
            for r in rig.fakes.stripe.refunds.values()
            if r["metadata"]["out_request_no"] == doc["refunds"][0]["out_request_no"]
        )
    )["id"]
    event = rig.fakes.stripe.event(
        "refund.updated", rig.fakes.stripe.set_refund_status(refund_id, "succeeded")
    )
    assert (await rig.stripe_event(event)).json()["outcome"] == "refund_succeeded"
    assert (await rig.stripe_event(event)).json()["outcome"] == "duplicate"
    after = await rig.ok("GET", "/api/me/refunds", token)
    assert after["refunds"][0]["state"] == "completed"
    assert (await rig.balance(account))["cash_nano"] == 4_000_000_000
    assert (await run_audit(rig.engine)).ok


async def test_failed_refunds_give_the_cash_back_and_reconciliation_confirms(world: World) -> None:
    rig = world.rig
    account, token = await rig.customer("failing@example.com")
    await pay_alipay(rig, token, "72.00")
    rig.fakes.alipay.refund_failure = "ACQ.SELLER_BALANCE_NOT_ENOUGH"
    asked = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "r"})
    doc = await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve")
    assert doc["state"] == "failed" and doc["refunds"][0]["state"] == "failed"
    assert "Alipay refused" in doc["refunds"][0]["failure_reason"]
    assert (await rig.balance(account))["cash_nano"] == 10_000_000_000  # released back to cash
    assert (await run_audit(rig.engine)).ok

    # Stripe: the refund is pending at approval and settles later; reconciliation asks.
    rig.fakes.stripe.refund_status = "pending"
    account2, token2 = await rig.customer("later@example.com")
    await pay_stripe(rig, token2, "10.00")
    asked = await rig.ok("POST", "/api/me/refunds", token2, json={"reason": "r"})
    doc = await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve")
    refund = next(
        r
        for r in rig.fakes.stripe.refunds.values()
        if r["metadata"]["out_request_no"] == doc["refunds"][0]["out_request_no"]
    )
    rig.fakes.stripe.set_refund_status(refund["id"], "succeeded")
    summary = await Reconciler(rig.ctx).run()
    assert summary["refunds"] == {"succeeded": 1}, summary
    assert (await rig.ok("GET", "/api/me/refunds", token2))["refunds"][0]["state"] == "completed"
    assert (await rig.balance(account2))["cash_nano"] == 0
    assert (await run_audit(rig.engine)).ok


async def test_epay_refund_holds_and_staff_decisions(world: World) -> None:
    rig = world.rig
    account, token = await rig.customer("epay-refund@example.com")
    support, support_token = await rig.customer("support@example.com", role="support")
    order = await rig.order(token, "epay", "36.00", "CNY", "alipay")
    async with httpx2.AsyncClient() as http:
        await http.get(order["pay_url"])
    rig.fakes.epay.pay(order["order_number"])
    assert (await rig.epay_notify(rig.fakes.epay.notification(order["order_number"]))).text == "success"

    asked = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "r", "amount": "2"})
    # One open request at a time; customers cannot decide; a rejection needs a reason.
    assert (await rig.call("POST", "/api/me/refunds", token, json={"reason": "again"})).status_code == 409
    assert (await rig.call("POST", f"/api/admin/refunds/{asked['id']}/approve", token)).status_code == 403
    assert (
        await rig.call("POST", f"/api/admin/refunds/{asked['id']}/reject", support_token, json={})
    ).status_code == 422
    rejected = await rig.ok(
        "POST", f"/api/admin/refunds/{asked['id']}/reject", support_token, json={"reason": "used the service"}
    )
    assert rejected["state"] == "rejected" and rejected["decision_reason"] == "used the service"
    assert (
        await rig.call("POST", f"/api/admin/refunds/{asked['id']}/approve", support_token)
    ).status_code == 409

    asked = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "r2", "amount": "2"})
    doc = await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve", support_token)
    assert doc["state"] == "completed" and doc["refunds"][0]["amount"] == "14.40"
    assert rig.fakes.epay.orders[order["order_number"]]["refunded"] == "14.40"
    assert (await rig.balance(account))["cash_nano"] == 3_000_000_000
    async with rig.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log.c.action, audit_log.c.actor, audit_log.c.reason))).all()
    assert ("refund.reject", f"account:{support}", "used the service") in [tuple(r) for r in rows]
    assert (await run_audit(rig.engine)).ok


async def test_open_holds_and_vouchers_limit_what_is_refundable(world: World) -> None:
    rig = world.rig
    account, token = await rig.customer("holds@example.com")
    await pay_stripe(rig, token, "10.00")
    facts = CallFacts(
        "trace-open", account, "key-1", "chat.completions", "claude-opus-4-5", "claude-opus-4-5",
        "default", Ratio.parse("1"), False, None, datetime.now(UTC) - timedelta(seconds=1),
    )  # fmt: skip
    await world.biller.admit(
        facts,
        world.entry,
        input_upper=0,
        input_expected=0,
        max_output=4 * TOKENS_PER_CREDIT,
        spend_cap_nano=None,
    )
    await world.biller.writer.flush()  # the hold is mirrored to the database (lazily, after ~1 s)
    asked = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "r"})
    assert asked["refundable_now"] == "6"  # 10 cash − 4 held for the call in flight
    doc = await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve")
    assert doc["refunds"][0]["amount"] == "6.00"
    await world.biller.settle(
        facts, world.entry, Usage(output_tokens=TOKENS_PER_CREDIT), latency_ms=1, ttft_ms=1
    )
    balance = await rig.balance(account)
    assert balance["cash_nano"] == 3_000_000_000
    assert (await run_audit(rig.engine)).ok
