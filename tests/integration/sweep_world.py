"""A started :class:`TollwayApp` (SQLite, the fake upstream and the fake payment providers on
loopback) with four signed-in principals and a victim who owns one of everything.

Shared by the OpenAPI fuzzing (``test_api_fuzz.py``) and the cross-account sweep
(``test_cross_account.py``). Nothing of Tollway is mocked: accounts, keys, calls, orders,
refunds, vouchers and codes are all made through the running app's own routes.

- **B** (the victim, ``edge@example.test``): cash credit, an API key, one real chat call
  (its usage record), a Stripe order paid and credited by a signed webhook, a refund approved
  and completed (its refund item), a second refund request left open, a voucher grant and a
  redeemed code.
- **A** (the prober): a customer of its own, with an API key.
- a **support** and an **admin** account, both with two-factor on (staff must have it).
- the **admin token**.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from edge_rig import EMAIL, PASSWORD, EdgeRig, fake_upstream, tollway
from payments_rig import Fakes, provider_settings, running_fakes

from tollway.api.sessions import account_by_email
from tollway.services.totp import TotpService, code_for_step, current_step

ADMIN_TOKEN = "admin-token-for-the-sweep-0123456789"
BASE = "http://tollway.test"
CSRF = "sweep-csrf-token-0123456789"


@dataclass(frozen=True)
class Who:
    """One way of calling Tollway: a bearer for ``/api`` and ``/v1``, a cookie for the console."""

    name: str
    role: str  # customer | support | admin | token | key | anonymous
    bearer: str | None = None
    session: str | None = None  # the same token, as the console's session cookie
    account_id: str | None = None

    def api_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.bearer}"} if self.bearer else {}

    def console_cookies(self) -> dict[str, str]:
        cookies = {"tw_csrf": CSRF}
        if self.session:
            cookies["tw_session"] = self.session
        return cookies


@dataclass
class Owned:
    """What B owns, by the ids other principals will try."""

    account_id: str
    email: str
    key_id: str
    key_secret: str
    trace_id: str
    order_number: str
    provider_ref: str
    refund_id: str  # a refund item (one payment's refund) of the approved request
    refund_request_id: str  # the approved and completed request
    open_request_id: str  # a request still waiting for staff
    batch_id: str  # a code batch; B redeemed one of its codes
    spare_code: str = ""  # the batch's other code, still unused: a secret only admins may export

    def markers(self) -> dict[str, str]:
        """Strings that appear only in B's data: one of them in someone else's answer is a leak."""
        return {
            "B account id": self.account_id,
            "B email": self.email,
            "B key id": self.key_id,
            "B key secret": self.key_secret,
            "B trace id": self.trace_id,
            "B order number": self.order_number,
            "B provider reference": self.provider_ref,
            "B refund id": self.refund_id,
            "B refund request id": self.refund_request_id,
            "B open refund request id": self.open_request_id,
            "code batch id": self.batch_id,
            "unused code": self.spare_code,
        }


@dataclass
class World:
    rig: EdgeRig
    fakes: Fakes
    client: httpx2.AsyncClient
    a: Who
    b: Who
    support: Who
    admin: Who
    token: Who
    a_key: Who
    owned: Owned
    a_key_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    async def call(self, who: Who | None, method: str, path: str, **kw: Any) -> httpx2.Response:
        headers = {**(who.api_headers() if who else {}), **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def ok(self, who: Who | None, method: str, path: str, **kw: Any) -> Any:
        r = await self.call(who, method, path, **kw)
        assert r.status_code in (200, 201), (method, path, r.status_code, r.text)
        return r.json()


def payment_settings(fakes: Fakes) -> dict[str, Any]:
    return {
        "admin_token": ADMIN_TOKEN,
        "public_base_url": BASE,
        **provider_settings(fakes),
    }


async def sign_in(client: httpx2.AsyncClient, email: str, totp_secret: str | None = None) -> str:
    body = {"email": email, "password": PASSWORD}
    if totp_secret:
        body["totp"] = code_for_step(totp_secret, current_step())
    r = await client.post("/api/auth/login", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def staff(rig: EdgeRig, client: httpx2.AsyncClient, role: str) -> Who:
    doc = await rig.admin.create_account(f"{role}@example.test", password=PASSWORD, role=role)
    totp = TotpService(rig.app.engine, rig.app.box, actor="sweep")
    secret = await totp.begin(str(doc["id"]))
    await totp.confirm(str(doc["id"]), code_for_step(secret, current_step() - 1))
    token = await sign_in(client, f"{role}@example.test", secret)
    return Who(role, role, token, token, str(doc["id"]))


async def customer(rig: EdgeRig, client: httpx2.AsyncClient, name: str, email: str) -> Who:
    token = await sign_in(client, email)
    async with rig.app.engine.connect() as conn:
        row = await account_by_email(conn, email)
    assert row is not None
    return Who(name, "customer", token, token, str(row.id))


async def furnish_b(w: World) -> None:
    """B's call, order, refunds, voucher and code — through the app's own routes."""
    b, token = w.b, w.token
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    r = await w.call(None, "POST", "/v1/chat/completions", json=chat, headers=w_key(w.owned.key_secret))
    assert r.status_code == 200, r.text
    w.owned.trace_id = r.headers["x-request-id"]

    price = {"price_per_credit": "1", "min_amount": "1.00"}
    await w.ok(token, "PUT", "/api/admin/payments/prices/USD", json=price)
    order = await w.ok(
        b, "POST", "/api/me/orders", json={"provider": "stripe", "amount": "10.00", "currency": "USD"}
    )
    w.owned.order_number, w.owned.provider_ref = order["order_number"], order["provider_ref"]
    session = w.fakes.stripe.pay(order["provider_ref"])
    body, header = w.fakes.stripe.signed(w.fakes.stripe.event("checkout.session.completed", session))
    hook = {"Stripe-Signature": header, "Content-Type": "application/json"}
    assert (await w.call(None, "POST", "/webhooks/stripe", content=body, headers=hook)).status_code == 200

    first = await w.ok(b, "POST", "/api/me/refunds", json={"reason": "sweep", "amount": "1"})
    done = await w.ok(token, "POST", f"/api/admin/refunds/{first['id']}/approve", json={"reason": "ok"})
    w.owned.refund_request_id, w.owned.refund_id = first["id"], done["refunds"][0]["id"]
    second = await w.ok(b, "POST", "/api/me/refunds", json={"reason": "open one", "amount": "1"})
    w.owned.open_request_id = second["id"]

    grant = {"amount": "1", "reason": "sweep", "expires": "2099-01-01"}
    await w.ok(token, "POST", f"/api/admin/accounts/{b.account_id}/vouchers", json=grant)
    batch = await w.ok(token, "POST", "/api/admin/codes", json={"count": 2, "value": "1", "kind": "voucher"})
    w.owned.batch_id, w.owned.spare_code = str(batch["batch_id"]), str(batch["codes"][1])
    await w.ok(b, "POST", "/api/me/redeem", json={"code": batch["codes"][0]})


def w_key(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@contextlib.asynccontextmanager
async def sweep_world(tmp_path: Path) -> AsyncIterator[World]:
    with running_fakes() as fakes:
        async with fake_upstream() as fake, tollway(tmp_path, fake, **payment_settings(fakes)) as rig:
            transport = httpx2.ASGITransport(app=rig.app)
            async with httpx2.AsyncClient(transport=transport, base_url=BASE) as client:
                b = await customer(rig, client, "B", EMAIL)
                a_doc = await rig.admin.create_account("a@example.test", password=PASSWORD)
                a_key = await rig.admin.create_key(a_doc["id"], name="a-key", group="g")
                await rig.admin.credit(a_doc["id"], "5", kind="cash", reason="sweep")
                a = await customer(rig, client, "A", "a@example.test")
                b_key_id = str((await rig.admin.list_keys(b.account_id or ""))[0]["id"])
                owned = Owned(b.account_id or "", EMAIL, b_key_id, rig.secret, "", "", "", "", "", "", "")
                w = World(
                    rig=rig,
                    fakes=fakes,
                    client=client,
                    a=a,
                    b=b,
                    support=await staff(rig, client, "support"),
                    admin=await staff(rig, client, "admin"),
                    token=Who("admin token", "token", ADMIN_TOKEN),
                    a_key=Who("A's API key", "key", str(a_key["secret"]), account_id=a.account_id),
                    owned=owned,
                    a_key_id=str(a_key["id"]),
                )
                assert rig.app.gateway is not None
                await rig.app.gateway.config.refresh(force=True)
                await furnish_b(w)
                yield w
