"""Shared set-up for the payment integration tests: the fake providers on loopback, the control
API in process (ASGI transport) configured against them, and helpers to pay and deliver."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.api import ControlDeps, build_control_app
from tollway.ledger.chart import TransferKind
from tollway.payments.context import PaymentsContext
from tollway.payments.fakes import FakeAlipay, FakeEPay, FakeStripe
from tollway.services.totp import TotpService, code_for_step, current_step
from tollway.settings import Settings
from tollway.store.secret_box import SecretBox
from tollway.store.tables import ledger_transfers

ADMIN = "admin-token-for-payment-tests-0123456789"
PASSWORD = "correct horse battery"
BASE = "http://tollway.test"


@dataclass
class Fakes:
    stripe: FakeStripe
    alipay: FakeAlipay
    epay: FakeEPay


@contextlib.contextmanager
def running_fakes() -> Iterator[Fakes]:
    with FakeStripe() as s, FakeAlipay() as a, FakeEPay() as e:
        yield Fakes(s, a, e)


def provider_settings(fakes: Fakes) -> dict[str, Any]:
    """The settings that point Stripe, Alipay and EPay at the fakes."""
    return {
        "stripe_secret_key": fakes.stripe.secret_key,
        "stripe_webhook_secret": fakes.stripe.webhook_secret,
        "stripe_api_base": fakes.stripe.url,
        "alipay_app_id": fakes.alipay.app_id,
        "alipay_private_key": fakes.alipay.app_keys.private_pem,
        "alipay_public_key": fakes.alipay.alipay_keys.public_pem,
        "alipay_gateway": fakes.alipay.gateway,
        "alipay_seller_id": fakes.alipay.seller_id,
        "epay_url": fakes.epay.url,
        "epay_pid": fakes.epay.pid,
        "epay_key": fakes.epay.key,
    }


def settings_for(fakes: Fakes, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "admin_token": ADMIN,
        "data_dir": tmp_path,
        "secret_key": "test-secret-key",
        "public_base_url": BASE,
        **provider_settings(fakes),
        "reconcile_after_s": 0,
        "voucher_expiry_grace_s": 0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Rig:
    engine: AsyncEngine
    client: httpx2.AsyncClient
    ctx: PaymentsContext
    fakes: Fakes
    changes: list[int] = field(default_factory=list)

    async def call(self, method: str, path: str, token: str | None = ADMIN, **kw: Any) -> httpx2.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.client.request(method, path, headers=headers, **kw)

    async def ok(self, method: str, path: str, token: str | None = ADMIN, **kw: Any) -> Any:
        r = await self.call(method, path, token, **kw)
        assert r.status_code in (200, 201), r.text
        return r.json()

    async def customer(self, email: str, role: str = "customer") -> tuple[str, str]:
        doc = await self.ok(
            "POST", "/api/admin/accounts", json={"email": email, "password": PASSWORD, "role": role}
        )
        body = {"email": email, "password": PASSWORD}
        if role != "customer":  # staff must have two-factor on
            totp = TotpService(self.engine, SecretBox("test-secret-key"), actor="test")
            secret = await totp.begin(str(doc["id"]))
            await totp.confirm(str(doc["id"]), code_for_step(secret, current_step() - 1))
            body["totp"] = code_for_step(secret, current_step())
        login = await self.ok("POST", "/api/auth/login", None, json=body)
        return str(doc["id"]), str(login["token"])

    async def set_price(self, currency: str = "CNY", price: str = "7.2") -> None:
        await self.ok(
            "PUT",
            f"/api/admin/payments/prices/{currency}",
            json={"price_per_credit": price, "min_amount": "1.00"},
        )

    async def order(
        self, token: str, provider: str, amount: str, currency: str, method: str | None = None
    ) -> dict[str, Any]:
        body = {"provider": provider, "amount": amount, "currency": currency}
        if method:
            body["method"] = method
        return dict(await self.ok("POST", "/api/me/orders", token, json=body))

    async def stripe_event(
        self, event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
    ) -> httpx2.Response:
        body, header = self.fakes.stripe.signed(event, secret=secret, timestamp=timestamp)
        return await self.client.post(
            "/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )

    async def alipay_notify(self, params: dict[str, str]) -> httpx2.Response:
        return await self.client.post(
            "/webhooks/alipay",
            content=FakeAlipay.form(params),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )

    async def epay_notify(self, params: dict[str, str], *, method: str = "GET") -> httpx2.Response:
        if method == "GET":
            return await self.client.get(f"/webhooks/epay?{FakeEPay.query_string(params)}")
        return await self.client.post(
            "/webhooks/epay",
            content=FakeEPay.query_string(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    async def balance(self, account_id: str) -> dict[str, Any]:
        return dict(await self.ok("GET", f"/api/admin/accounts/{account_id}/balance"))

    async def topups(self, order_number: str) -> int:
        async with self.engine.connect() as conn:
            q = select(func.count()).where(
                ledger_transfers.c.kind == TransferKind.TOPUP.value,
                ledger_transfers.c.trace_id == order_number,
            )
            return int((await conn.execute(q)).scalar_one())


@contextlib.asynccontextmanager
async def make_rig(engine: AsyncEngine, fakes: Fakes, tmp_path: Path, **overrides: Any) -> AsyncIterator[Rig]:
    settings = settings_for(fakes, tmp_path, **overrides)
    changes: list[int] = []
    box = SecretBox("test-secret-key")
    deps = ControlDeps(engine, box, settings, on_change=lambda: changes.append(1))
    app = build_control_app(deps)
    ctx = PaymentsContext.build(engine, box, settings, on_change=lambda: changes.append(1))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as client:
        yield Rig(engine, client, ctx, fakes, changes)


async def pay_stripe(rig: Rig, token: str, amount: str) -> dict[str, Any]:
    order = await rig.order(token, "stripe", amount, "USD")
    session = rig.fakes.stripe.pay(order["provider_ref"])
    assert (
        await rig.stripe_event(rig.fakes.stripe.event("checkout.session.completed", session))
    ).status_code == 200
    return order


async def pay_alipay(rig: Rig, token: str, amount: str) -> dict[str, Any]:
    order = await rig.order(token, "alipay", amount, "CNY", "qr")
    rig.fakes.alipay.pay(order["order_number"])
    assert (await rig.alipay_notify(rig.fakes.alipay.notification(order["order_number"]))).text == "success"
    return order
