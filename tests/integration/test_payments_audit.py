"""``tollway audit`` checks payments: every paid order credited exactly once, every refund
posted once, every redeemed code credited once. Each corruption is seeded and must be found."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from payments_rig import Fakes, Rig, make_rig, running_fakes
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.audit import run_audit
from tollway.ledger import chart
from tollway.ledger.chart import AccountKind, TransferKind
from tollway.ledger.transfer import Leg, Transfer
from tollway.store import ledger_repo
from tollway.store.tables import orders, redemption_codes, refunds


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture
async def rig(engine: AsyncEngine, fakes: Fakes, tmp_path: Path) -> AsyncIterator[Rig]:
    fakes.stripe.refund_status = "succeeded"
    async with make_rig(engine, fakes, tmp_path) as r:
        yield r


async def manual_order(rig: Rig, account: str, amount: str = "10.00") -> str:
    doc = await rig.ok(
        "POST",
        f"/api/admin/accounts/{account}/orders",
        json={"provider": "manual", "amount": amount, "currency": "USD"},
    )
    return str(doc["order_number"])


async def post(rig: Rig, key: str, kind: TransferKind, owner: str, ref: str, nano: int) -> None:
    """A balanced transfer through the ledger repository: balances stay consistent, so only the
    payment check can notice it."""
    async with rig.engine.begin() as conn:
        cash = await ledger_repo.get_or_create_account(
            conn, chart.cash_code(owner), AccountKind.CUSTOMER_CASH, owner_id=owner
        )
        clearing = await ledger_repo.get_or_create_account(
            conn, chart.clearing_code("manual"), AccountKind.CLEARING
        )
        transfer = Transfer(
            key, kind.value, (Leg(clearing, -nano), Leg(cash, nano)), owner_id=owner, trace_id=ref
        )
        await ledger_repo.post_transfers(conn, [transfer])


async def codes(rig: Rig) -> set[str]:
    return {f.code for f in (await run_audit(rig.engine)).findings}


async def test_order_corruptions_are_found(rig: Rig) -> None:
    account, _ = await rig.customer("audited@example.com")
    credited_twice = await manual_order(rig, account)
    await rig.ok("POST", f"/api/admin/orders/{credited_twice}/credit", json={"reason": "wire"})
    never_credited = await manual_order(rig, account)
    pending_but_credited = await manual_order(rig, account)
    report = await run_audit(rig.engine)
    assert report.ok, report.findings
    assert report.stats["orders"] == 3

    await post(rig, "forged-second-credit", TransferKind.TOPUP, account, credited_twice, 10_000_000_000)
    async with rig.engine.begin() as conn:
        await conn.execute(
            update(orders).where(orders.c.order_number == never_credited).values(state="credited")
        )
    await post(rig, "credit-without-state", TransferKind.TOPUP, account, pending_but_credited, 10_000_000_000)
    await post(rig, "credit-for-nothing", TransferKind.TOPUP, account, "TW000000NOSUCHORDR", 1)
    findings = (await run_audit(rig.engine)).findings
    messages = {(f.code, f.message) for f in findings}
    assert ("order_credited_twice", f"order {credited_twice} was credited 2 times") in messages
    assert any(c == "order_not_credited" and never_credited in m for c, m in messages)
    assert any(c == "credit_without_credited_order" and pending_but_credited in m for c, m in messages)
    assert any(c == "credit_without_credited_order" and "TW000000NOSUCHORDR" in m for c, m in messages)


async def paid(rig: Rig, email: str) -> tuple[str, str]:
    account, token = await rig.customer(email)
    order = await rig.order(token, "stripe", "10.00", "USD")
    session = rig.fakes.stripe.pay(order["provider_ref"])
    await rig.stripe_event(rig.fakes.stripe.event("checkout.session.completed", session))
    return account, token


async def test_refund_and_code_corruptions_are_found(rig: Rig) -> None:
    _, waiting = await paid(rig, "refund-pending@example.com")
    account, token = await paid(rig, "refund-audit@example.com")
    rig.fakes.stripe.refund_status = "pending"
    asked = await rig.ok("POST", "/api/me/refunds", waiting, json={"reason": "r", "amount": "2"})
    pending = (await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve"))["refunds"][0]
    rig.fakes.stripe.refund_status = "succeeded"
    asked = await rig.ok("POST", "/api/me/refunds", token, json={"reason": "r", "amount": "3"})
    done = (await rig.ok("POST", f"/api/admin/refunds/{asked['id']}/approve"))["refunds"][0]
    batch = await rig.ok("POST", "/api/admin/codes", json={"count": 2, "value": "1", "kind": "cash"})
    await rig.ok("POST", "/api/me/redeem", token, json={"code": batch["codes"][0]})
    assert await codes(rig) == set()

    # A pending refund marked succeeded without its posting; a refund posted twice.
    async with rig.engine.begin() as conn:
        await conn.execute(update(refunds).where(refunds.c.id == pending["id"]).values(state="succeeded"))
    await post(rig, "refund-again", TransferKind.REFUND, account, done["id"], done["credits_nano"])
    found = await codes(rig)
    assert {"refund_not_posted", "refund_posted_twice"} <= found

    # Refunds above what the order was paid.
    async with rig.engine.begin() as conn:
        await conn.execute(update(refunds).where(refunds.c.id == done["id"]).values(amount_minor=5_000))
    assert "order_over_refunded" in await codes(rig)

    # A code marked redeemed without its transfer; a redeemed code credited twice.
    async with rig.engine.begin() as conn:
        rows = (await conn.execute(select(redemption_codes.c.id, redemption_codes.c.state))).all()
        unused = next(r.id for r in rows if r.state == "active")
        used = next(r.id for r in rows if r.state == "redeemed")
        await conn.execute(
            update(redemption_codes).where(redemption_codes.c.id == unused).values(state="redeemed")
        )
    await post(rig, "redeem-again", TransferKind.REDEMPTION, account, used, 1_000_000_000)
    assert {"code_not_credited", "code_credited_twice"} <= await codes(rig)
