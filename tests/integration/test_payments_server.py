"""The running server reconciles by itself: a paid order with no webhook is credited by the
payments task that ``TollwayApp.start`` runs, and the data plane's wallet sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from payments_rig import ADMIN, Fakes, running_fakes, settings_for

from tollway.app import TollwayApp
from tollway.payments.context import PaymentsContext
from tollway.payments.orders import OrderService
from tollway.services.admin import AdminService
from tollway.services.queries import balance_snapshot


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


async def test_server_task_reconciles_paid_orders(db_url: str, fakes: Fakes, tmp_path: Path) -> None:
    settings = settings_for(fakes, tmp_path, database_url=db_url, reconcile_interval_s=0.2)
    app = TollwayApp(settings)
    await app.start()
    try:
        admin = AdminService(app.engine, app.box)
        account = (await admin.create_account("server@example.com"))["id"]
        ctx = PaymentsContext.build(app.engine, app.box, settings)
        order = await OrderService(ctx, "test").create(
            account, provider="stripe", amount="10.00", currency="USD"
        )
        fakes.stripe.pay(order["provider_ref"])
        for _ in range(100):
            async with app.engine.connect() as conn:
                if (await balance_snapshot(conn, account))["cash_nano"] == 10_000_000_000:
                    break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the server did not reconcile the paid order")
        assert app.gateway is not None
        for _ in range(50):  # the data plane's wallet cache picks the credit up
            wallet = app.gateway.biller.wallets.cached(account) or await app.gateway.biller.wallets.get(
                account
            )
            if wallet.cash_nano == 10_000_000_000:
                break
            await asyncio.sleep(0.1)
        assert wallet.cash_nano == 10_000_000_000
    finally:
        await app.stop()
    assert ADMIN
