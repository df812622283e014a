"""Redemption codes (voucher cards) and vouchers, on SQLite and PostgreSQL: single use under
concurrency, CSV export, revocation, expiry, staff voucher grants and the expiry sweep."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from payments_rig import Fakes, Rig, make_rig, running_fakes
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.audit import run_audit
from tollway.errors import Conflict
from tollway.ledger import chart
from tollway.payments.codes import CodeService
from tollway.payments.vouchers import VoucherService
from tollway.services.admin import AdminService
from tollway.store.tables import audit_log, ledger_accounts, redemption_codes


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture
async def rig(engine: AsyncEngine, fakes: Fakes, tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_rig(engine, fakes, tmp_path) as r:
        yield r


async def test_one_code_redeemed_100_times_concurrently_credits_once(rig: Rig) -> None:
    batch = await rig.ok(
        "POST", "/api/admin/codes", json={"count": 1, "value": "5", "kind": "cash", "label": "x"}
    )
    [code] = batch["codes"]
    admin = AdminService(rig.engine, rig.ctx.box)
    accounts = [(await admin.create_account(f"racer{i}@example.com"))["id"] for i in range(10)]
    service = CodeService(rig.ctx, "test")

    async def attempt(i: int) -> str | None:
        try:
            await service.redeem(accounts[i % 10], code)
        except Conflict:
            return None
        return accounts[i % 10]

    winners = [w for w in await asyncio.gather(*(attempt(i) for i in range(100))) if w is not None]
    assert len(winners) == 1
    balances = [(await rig.balance(a))["cash_nano"] for a in accounts]
    assert sorted(balances) == [0] * 9 + [5_000_000_000]
    async with rig.engine.connect() as conn:
        row = (await conn.execute(select(redemption_codes))).one()
    assert row.state == "redeemed" and row.redeemed_by == winners[0]
    report = await run_audit(rig.engine)
    assert report.ok, report.findings

    # The same race through the API with one customer's session: one 200, the rest 409.
    batch = await rig.ok("POST", "/api/admin/codes", json={"count": 1, "value": "1", "kind": "voucher"})
    account, token = await rig.customer("api-racer@example.com")
    responses = await asyncio.gather(
        *(rig.call("POST", "/api/me/redeem", token, json={"code": batch["codes"][0]}) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 19
    assert (await rig.balance(account))["voucher_nano"] == 1_000_000_000
    assert (await run_audit(rig.engine)).ok


async def test_batches_export_revoke_expiry_and_voucher_cards(rig: Rig) -> None:
    _, token = await rig.customer("cards@example.com")
    _, support_token = await rig.customer("support-cards@example.com", role="support")
    body = {"count": 4, "value": "2.5", "kind": "voucher", "expires": "2099-12-31", "label": "reseller A"}
    assert (await rig.call("POST", "/api/admin/codes", support_token, json=body)).status_code == 403
    batch = await rig.ok("POST", "/api/admin/codes", json=body)
    assert (
        batch["count"] == 4 and len(set(batch["codes"])) == 4 and batch["expires_at"].startswith("2099-12-31")
    )

    export = await rig.call("GET", f"/api/admin/codes/{batch['batch_id']}/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["code"] for r in rows) == sorted(batch["codes"])
    assert {(r["value"], r["kind"], r["state"], r["label"]) for r in rows} == {
        ("2.5", "voucher", "active", "reseller A")
    }

    first, second, third, fourth = batch["codes"]
    # People type codes in lower case, with spaces, and read O as 0.
    typed = first.lower().replace("-", " ").replace("0", "o")
    redeemed = await rig.ok("POST", "/api/me/redeem", token, json={"code": typed})
    assert redeemed["kind"] == "voucher" and redeemed["value"] == "2.5"
    again = await rig.call("POST", "/api/me/redeem", token, json={"code": first})
    assert again.status_code == 409 and "already been redeemed" in again.json()["error"]["message"]
    assert (
        await rig.call("POST", "/api/me/redeem", token, json={"code": "NOPE-NOPE-NOPE"})
    ).status_code == 404

    revoked = await rig.ok("POST", "/api/admin/codes/revoke", json={"code": second, "reason": "leaked"})
    assert revoked == {"revoked": 1}
    r = await rig.call("POST", "/api/me/redeem", token, json={"code": second})
    assert r.status_code == 409 and "revoked" in r.json()["error"]["message"]
    assert (await rig.call("POST", "/api/admin/codes/revoke", json={"code": first})).status_code == 409
    assert await rig.ok("POST", "/api/admin/codes/revoke", json={"batch_id": batch["batch_id"]}) == {
        "revoked": 2
    }
    listed = await rig.ok("GET", "/api/admin/codes", support_token)
    assert listed["batches"][0]["states"] == {"redeemed": 1, "revoked": 3}
    del third, fourth

    # An expired batch cannot be redeemed.
    short = await rig.ok(
        "POST", "/api/admin/codes", json={"count": 1, "value": "1", "kind": "cash", "expires": "2099-01-01"}
    )
    async with rig.engine.begin() as conn:
        from tollway.store.tables import redemption_batches

        await conn.execute(
            update(redemption_batches)
            .where(redemption_batches.c.id == short["batch_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(days=1))
        )
    r = await rig.call("POST", "/api/me/redeem", token, json={"code": short["codes"][0]})
    assert r.status_code == 409 and "expired" in r.json()["error"]["message"]

    vouchers = (await rig.ok("GET", "/api/me/vouchers", token))["vouchers"]
    assert [(v["granted"], v["remaining"], v["state"]) for v in vouchers] == [("2.5", "2.5", "active")]
    assert vouchers[0]["expires_at"].startswith("2099-12-31") and "reseller A" in vouchers[0]["reason"]
    async with rig.engine.connect() as conn:
        audit = [tuple(r) for r in await conn.execute(select(audit_log.c.action, audit_log.c.after))]
    assert any(a == "codes.create" for a, _ in audit) and any(a == "codes.revoke" for a, _ in audit)
    assert not any(code in str(audit) for code in batch["codes"])  # codes never reach the audit log
    assert (await run_audit(rig.engine)).ok


async def test_staff_vouchers_link_orders_and_expired_remainders_leave_through_the_ledger(rig: Rig) -> None:
    account, token = await rig.customer("voucher@example.com")
    other, _ = await rig.customer("other@example.com")
    order = await rig.ok(
        "POST",
        f"/api/admin/accounts/{account}/orders",
        json={"provider": "manual", "amount": "5.00", "currency": "USD"},
    )
    body = {
        "amount": "4",
        "expires": "2099-06-30",
        "reason": "slow top-up",
        "order_number": order["order_number"],
    }
    granted = await rig.ok("POST", f"/api/admin/accounts/{account}/vouchers", json=body)
    assert granted["voucher_nano"] == 4_000_000_000 and granted["order_number"] == order["order_number"]
    assert (await rig.call("POST", f"/api/admin/accounts/{other}/vouchers", json=body)).status_code == 404
    missing_trace = {**body, "order_number": None, "trace_id": "req_nope"}
    assert (
        await rig.call("POST", f"/api/admin/accounts/{account}/vouchers", json=missing_trace)
    ).status_code == 404
    no_expiry = {"amount": "1", "reason": "x"}
    assert (
        await rig.call("POST", f"/api/admin/accounts/{account}/vouchers", json=no_expiry)
    ).status_code == 422

    shown = await rig.ok("GET", f"/api/me/orders/{order['order_number']}", token)
    assert "voucher" in [e["kind"] for e in shown["events"]]
    [grant] = (await rig.ok("GET", "/api/me/vouchers", token))["vouchers"]
    assert grant["reason"] == f"slow top-up [order {order['order_number']}]"
    assert (grant["granted"], grant["remaining"], grant["spent"]) == ("4", "4", "0")

    # Time passes: the grant expires, and the sweep moves what is left to breakage.
    async with rig.engine.begin() as conn:
        await conn.execute(
            update(ledger_accounts)
            .where(ledger_accounts.c.kind == "customer_voucher", ledger_accounts.c.owner_id == account)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert await VoucherService(rig.ctx, "test").sweep() == 1
    assert await VoucherService(rig.ctx, "test").sweep() == 0
    [grant] = (await rig.ok("GET", "/api/me/vouchers", token))["vouchers"]
    assert (grant["state"], grant["remaining"], grant["expired_amount"]) == ("expired", "0", "4")
    async with rig.engine.connect() as conn:
        breakage = (
            await conn.execute(
                select(ledger_accounts.c.balance_nano).where(ledger_accounts.c.code == chart.VOUCHER_BREAKAGE)
            )
        ).scalar_one()
    assert breakage == 4_000_000_000
    assert (await rig.balance(account))["voucher_nano"] == 0
    report = await run_audit(rig.engine)
    assert report.ok, report.findings
