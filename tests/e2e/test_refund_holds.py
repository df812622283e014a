"""A refund approved while a call is in flight leaves the cash that call reserved, even when
the hold is younger than ``hold_persist_delay_s`` and so not written yet: the approval asks
the data plane in its process to write its holds first. The call then settles from that cash;
the balance never goes below zero and the audit passes."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tollway.api.sessions import create_session
from tollway.payments.context import PaymentsContext
from tollway.payments.crediting import Crediting
from tollway.payments.orders import OrderService
from tollway.payments.pricing import PricingService
from tollway.payments.refunds import RefundService
from tollway.services.admin import AdminService
from tollway.services.totp import TotpService, code_for_step, current_step
from tollway.settings import Settings, normalise_database_url
from tollway.store.db import make_engine
from tollway.store.secret_box import SecretBox
from tollway.store.tables import holds

from .calls import fake
from .provision import SECRET_KEY
from .stack import Stack, http_json, poll, running_stack


@pytest.fixture
def slow_holds(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    """Holds are written 60 s after a call starts: only the refund's request writes them."""
    env = {"TOLLWAY_HOLD_PERSIST_DELAY_S": "60", "TOLLWAY_HOLD_TIMEOUT_S": "120"}
    backend = "postgres" if db_url.startswith("postgres") else "sqlite"
    with running_stack(backend, db_url, tmp_path / "stack", env) as s:
        yield s


async def _paid_customer_and_admin(db_url: str) -> tuple[str, str, str]:
    """A customer with 10 credits of cash from a paid (manual) order, a refund request for all
    of it, and a session token of an admin with two-factor on."""
    engine = make_engine(normalise_database_url(db_url))
    box = SecretBox(SECRET_KEY)
    try:
        ctx = PaymentsContext.build(engine, box, Settings(database_url=db_url))
        admin = AdminService(engine, box, actor="e2e")
        customer = (await admin.create_account("refund-holds@example.com"))["id"]
        staff = (await admin.create_account("refund-admin@example.com", password="pw-123456", role="admin"))[
            "id"
        ]
        totp = TotpService(engine, box)
        secret = await totp.begin(staff)
        await totp.confirm(staff, code_for_step(secret, current_step()))
        await PricingService(ctx, "e2e").set_price("USD", price_per_credit="1", enabled=True)
        order = await OrderService(ctx, "e2e").create(
            customer, provider="manual", amount="10.00", currency="USD", staff=True
        )
        await Crediting(ctx, "e2e").credit_manually(order["order_number"], reason="wire seen")
        asked = await RefundService(ctx, "e2e").request(customer, reason="leaving")
        async with engine.begin() as conn:
            token, _ = await create_session(conn, staff, ttl_s=600)
        return customer, asked["id"], token
    finally:
        await engine.dispose()


def _open_holds(db_url: str) -> list[int]:
    async def go() -> list[int]:
        engine = make_engine(normalise_database_url(db_url))
        try:
            async with engine.connect() as conn:
                q = select(holds.c.amount_nano).where(holds.c.state == "active")
                return [int(x) for x in (await conn.execute(q)).scalars()]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_refund_leaves_the_cash_a_call_in_flight_reserved(slow_holds: Stack, db_url: str) -> None:
    st = slow_holds
    customer, request_id, token = asyncio.run(_paid_customer_and_admin(db_url))
    key = st.p.create_key(customer, name="k", group="x1")
    done = threading.Event()
    errors: list[BaseException] = []
    tag = f"refund-holds-{uuid.uuid4().hex[:8]}"

    def long_call() -> None:  # a stream that stalls 3 s after its first chunk
        try:
            with st.client(str(key["secret"]), timeout=30) as client:
                stream = client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "hi"}],
                    max_tokens=4000,
                    stream=True,
                    extra_body=fake(tag, chunks=4, stall_after=1, stall_ms=3000),
                )
                for _ in stream:
                    pass
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=long_call)
    worker.start()
    try:
        cash = 10_000_000_000
        # the call is admitted and upstream (its hold is in memory only: nothing written for 60 s)
        poll(lambda: True if st.fake_requests(tag) else None, timeout=10, what="the call upstream")
        assert _open_holds(db_url) == []
        status, _, doc = http_json(
            "POST",
            f"{st.url}/api/admin/refunds/{request_id}/approve",
            {"reason": "ok"},
            {"authorization": f"Bearer {token}"},
        )
        assert status == 200, doc
        [held] = _open_holds(db_url)  # written by the approval, before it read the cash
        refunded = sum(int(r["credits_nano"]) for r in doc["refunds"])
        # all the cash but the hold, in whole cents (1 credit = 1 USD here; the plan rounds down)
        assert held > 0 and cash - held - 10_000_000 < refunded <= cash - held, (held, refunded)
    finally:
        worker.join(30)
    assert not errors, errors
    after = st.balance(customer)
    assert after["cash_nano"] >= 0, after  # the call settled from the cash it reserved
    st.audit_ok()
