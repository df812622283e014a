"""The control-plane API in process (httpx2's ASGI transport), on SQLite and PostgreSQL.

Admin token and session auth, roles, /api/me scoping, secrets shown once, credits and
balances, validation errors naming the field, the error envelope, request ids, OpenAPI.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.api import ControlDeps, build_control_app
from tollway.services.totp import TotpService, code_for_step, current_step
from tollway.settings import Settings
from tollway.store.secret_box import SecretBox
from tollway.store.tables import channels, sessions, usage_records

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
PASSWORD = "correct horse battery"


@dataclass
class Api:
    app: FastAPI
    client: httpx2.AsyncClient
    engine: AsyncEngine
    changes: list[int] = field(default_factory=list)
    totp_secrets: dict[str, str] = field(default_factory=dict)  # staff email -> two-factor secret

    async def call(
        self, method: str, path: str, token: str | None = ADMIN_TOKEN, **kw: Any
    ) -> httpx2.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.client.request(method, path, headers=headers, **kw)

    async def ok(self, method: str, path: str, token: str | None = ADMIN_TOKEN, **kw: Any) -> Any:
        r = await self.call(method, path, token, **kw)
        assert r.status_code in (200, 201), r.text
        return r.json()

    async def login(self, email: str, password: str = PASSWORD) -> str:
        body = {"email": email, "password": password}
        if email in self.totp_secrets:
            body["totp"] = code_for_step(self.totp_secrets[email], current_step())
        doc = await self.ok("POST", "/api/auth/login", None, json=body)
        assert doc["token"].startswith("tws_")
        return str(doc["token"])

    async def account(self, email: str, role: str = "customer") -> str:
        doc = await self.ok(
            "POST", "/api/admin/accounts", json={"email": email, "password": PASSWORD, "role": role}
        )
        if role != "customer":  # staff must have two-factor on (confirmed with the previous step's code)
            totp = TotpService(self.engine, SecretBox("test-secret-key"), actor="test")
            self.totp_secrets[email] = secret = await totp.begin(str(doc["id"]))
            await totp.confirm(str(doc["id"]), code_for_step(secret, current_step() - 1))
        return str(doc["id"])


def make_app(engine: AsyncEngine, tmp_path: Path, changes: list[int], token: str | None) -> FastAPI:
    settings = Settings(admin_token=token, data_dir=tmp_path, secret_key="test-secret-key")
    deps = ControlDeps(engine, SecretBox("test-secret-key"), settings, on_change=lambda: changes.append(1))
    return build_control_app(deps)


@pytest.fixture
async def api(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Api]:
    changes: list[int] = []
    app = make_app(engine, tmp_path, changes, ADMIN_TOKEN)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://tollway.test") as client:
        yield Api(app, client, engine, changes)


def assert_error(r: httpx2.Response, status: int, code: str, param: str | None = None) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err["param"] == param, err
    assert r.headers["x-request-id"] in err["message"]  # every message ends with the request id
    assert "Traceback" not in r.text


async def insert_usage(engine: AsyncEngine, owner_id: str, key_id: str) -> str:
    trace = f"trace-{uuid.uuid4().hex}"
    async with engine.begin() as conn:
        await conn.execute(
            usage_records.insert().values(
                trace_id=trace, created_at=datetime.now(UTC), owner_id=owner_id, key_id=key_id,
                endpoint="/v1/chat/completions", model_requested="gpt-4o-mini",
                model_billed="gpt-4o-mini", group_name="default", multiplier="0.3", stream=False,
                status="ok", http_status=200, input_tokens=10, cache_read_tokens=0,
                cache_write_5m_tokens=0, cache_write_1h_tokens=0, output_tokens=5,
                reasoning_tokens=0, calls=1, estimated=False, price_snapshot="{}", lines="[]",
                official_cost_nano=100, deduction_nano=30, balance_after_nano=0, overrun_nano=0,
                hold_nano=100, latency_ms=12, channel_id="chan-1", client_ip="127.0.0.1",
            )
        )  # fmt: skip
    return trace


async def test_admin_token_auth_and_request_ids(api: Api, tmp_path: Path) -> None:
    r = await api.call("GET", "/api/admin/groups", token=None)
    assert_error(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api.call("GET", "/api/admin/groups", token="not-the-token")
    assert_error(r, 401, "unauthenticated")
    r = await api.call("GET", "/api/admin/groups", headers={"x-request-id": "req-abc.1"})
    assert r.status_code == 200 and r.json() == {"groups": []}
    assert r.headers["x-request-id"] == "req-abc.1"  # the caller's id is kept
    r2 = await api.call("GET", "/api/admin/groups", headers={"x-request-id": "bad id\t!"})
    assert r2.headers["x-request-id"] not in ("bad id\t!", r.headers["x-request-id"])

    # Unknown routes and methods use the same envelope.
    assert_error(await api.call("GET", "/api/admin/nothing-here"), 404, "not_found")
    assert_error(await api.call("DELETE", "/api/admin/groups"), 405, "method_not_allowed")

    # Without a configured admin token, token auth is refused whatever is sent.
    app = make_app(api.engine, tmp_path, [], None)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://tollway.test"
    ) as client:
        for token in (ADMIN_TOKEN, "", "None"):
            r = await client.get("/api/admin/groups", headers={"Authorization": f"Bearer {token}"})
            assert_error(r, 401, "unauthenticated")


async def test_provisioning_credits_and_secrets(api: Api) -> None:
    group = await api.ok("POST", "/api/admin/groups", json={"name": "default", "multiplier": "0.3"})
    assert group["multiplier"] == "0.3" and api.changes
    patched = await api.ok("PATCH", "/api/admin/groups/default", json={"rpm": 60, "label": "x"})
    assert patched["multiplier"] == "0.3" and patched["rpm"] == 60
    assert_error(
        await api.call("POST", "/api/admin/groups", json={"name": "default", "multiplier": "1"}),
        409,
        "conflict",
        "name",
    )

    acct = await api.account("a@example.com")
    assert (await api.ok("GET", f"/api/admin/accounts/{acct}"))["email"] == "a@example.com"
    key = await api.ok(
        "POST",
        f"/api/admin/accounts/{acct}/keys",
        json={"name": "ci", "group": "default", "expires": "2031-01-31", "spend_cap": "5"},
    )
    assert key["secret"].startswith("sk-") and key["expires_at"] == "2031-01-31T23:59:59+00:00"
    assert key["spend_cap_nano"] == 5_000_000_000
    listed = await api.ok("GET", f"/api/admin/accounts/{acct}/keys")
    assert [k["id"] for k in listed["keys"]] == [key["id"]]
    assert key["secret"] not in str(listed) and "secret" not in listed["keys"][0]
    assert "secret" not in await api.ok("GET", f"/api/admin/keys/{key['id']}")

    # Revocation is final.
    await api.ok("POST", f"/api/admin/keys/{key['id']}/revoke")
    assert_error(await api.call("POST", f"/api/admin/keys/{key['id']}/enable"), 409, "conflict", "key_id")

    await api.ok(
        "POST",
        f"/api/admin/accounts/{acct}/credits",
        json={"amount": "10.5", "kind": "cash", "reason": "top-up", "idempotency_key": "o-1"},
    )
    again = await api.ok(  # same idempotency key: credited once
        "POST",
        f"/api/admin/accounts/{acct}/credits",
        json={"amount": "10.5", "kind": "cash", "reason": "top-up", "idempotency_key": "o-1"},
    )
    assert again["cash_nano"] == 10_500_000_000
    await api.ok(
        "POST",
        f"/api/admin/accounts/{acct}/credits",
        json={"amount": "2", "kind": "voucher", "reason": "sorry", "expires": "2031-01-01"},
    )
    bal = await api.ok("GET", f"/api/admin/accounts/{acct}/balance")
    assert (bal["cash_nano"], bal["voucher_nano"], bal["held_nano"]) == (
        10_500_000_000,
        2_000_000_000,
        0,
    )
    assert bal["available_nano"] == 12_500_000_000 and bal["available"] == "12.5"
    assert bal["vouchers"][0]["expires_at"] == "2031-01-01T23:59:59+00:00"

    # Validation: 422 naming the field; money is never a JSON number.
    credits = f"/api/admin/accounts/{acct}/credits"
    for body, param in (
        ({"amount": 10.5, "kind": "cash", "reason": "r"}, "amount"),
        ({"amount": "abc", "kind": "cash", "reason": "r"}, "amount"),
        ({"amount": "-1", "kind": "cash", "reason": "r"}, "amount"),
        ({"amount": "1", "kind": "gold", "reason": "r"}, "kind"),
        ({"amount": "1", "kind": "cash"}, "reason"),
        ({"amount": "1", "kind": "voucher", "reason": "r", "expires": "soon"}, "expires"),
    ):
        assert_error(await api.call("POST", credits, json=body), 422, "unprocessable_entity", param)
    assert_error(
        await api.call("POST", "/api/admin/groups", json={"name": "neg", "multiplier": "-0.3"}),
        422,
        "unprocessable_entity",
        "multiplier",
    )
    # Domain errors keep their status: cash cannot expire; unknown accounts are 404.
    r = await api.call(
        "POST",
        credits,
        json={"amount": "1", "kind": "cash", "reason": "r", "expires": "2031-01-01"},
    )
    assert_error(r, 400, "invalid_request_error", "expires")
    missing = f"/api/admin/accounts/{uuid.uuid4()}"
    assert_error(await api.call("GET", f"{missing}/balance"), 404, "not_found", "account_id")
    assert_error(await api.call("GET", f"{missing}/keys"), 404, "not_found", "account_id")

    # Models and channels; the channel credential never comes back and is encrypted at rest.
    price = await api.ok("PUT", "/api/admin/models/my-model", json={"input": "1.25", "output": "5"})
    assert price["prices"]["input"] == "1.25"
    assert "my-model" in {m["model"] for m in (await api.ok("GET", "/api/admin/models"))["models"]}
    credential = "sk-upstream-PLAINTEXT-credential"
    chan = await api.ok(
        "POST",
        "/api/admin/channels",
        json={
            "name": "up",
            "type": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key": credential,
            "models": ["gpt-4o-mini"],
            "model_map": {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"},
        },
    )
    assert chan["has_credential"] is True and "api_key" not in chan
    chan = await api.ok("PATCH", "/api/admin/channels/up", json={"enabled": False, "weight": 3})
    assert chan["status"] == "disabled" and chan["weight"] == 3
    listing = await api.call("GET", "/api/admin/channels")
    assert credential not in listing.text and listing.json()["channels"][0]["name"] == "up"
    async with api.engine.connect() as conn:
        stored = (await conn.execute(select(channels.c.credential_enc))).scalar_one()
    assert credential not in stored
    assert_error(
        await api.call("POST", "/api/admin/channels", json={"name": "x", "type": "openai"}),
        422,
        "unprocessable_entity",
        "base_url",
    )


async def test_login_sessions_and_me_scoping(api: Api) -> None:
    await api.ok("POST", "/api/admin/groups", json={"name": "default", "multiplier": "0.3"})
    a = await api.account("alice@example.com")
    b = await api.account("bob@example.com")
    b_key = await api.ok("POST", f"/api/admin/accounts/{b}/keys", json={"name": "b", "group": "default"})
    b_trace = await insert_usage(api.engine, b, b_key["id"])

    # Unknown email and wrong password are the same error.
    bad = [
        await api.call("POST", "/api/auth/login", None, json={"email": e, "password": p})
        for e, p in (("alice@example.com", "wrong password"), ("nobody@example.com", PASSWORD))
    ]
    for r in bad:
        assert_error(r, 401, "invalid_credentials")
    assert (
        bad[0].json()["error"]["message"].split(" (request id")[0]
        == (bad[1].json()["error"]["message"].split(" (request id")[0])
    )
    token = await api.login("Alice@Example.com ")
    me = await api.ok("GET", "/api/me", token)
    assert me["id"] == a and me["email"] == "alice@example.com"

    # Keys: the secret once, never again; only mine.
    mine = await api.ok("POST", "/api/me/keys", token, json={"name": "laptop", "group": "default"})
    assert mine["secret"].startswith("sk-") and mine["account_id"] == a
    keys = (await api.ok("GET", "/api/me/keys", token))["keys"]
    assert [k["id"] for k in keys] == [mine["id"]] and "secret" not in keys[0]
    assert (await api.ok("GET", f"/api/me/keys/{mine['id']}", token))["name"] == "laptop"
    assert_error(await api.call("GET", f"/api/me/keys/{b_key['id']}", token), 404, "not_found", "key_id")
    r = await api.call("POST", f"/api/me/keys/{b_key['id']}/revoke", token)
    assert_error(r, 404, "not_found", "key_id")
    assert (await api.ok("GET", f"/api/admin/keys/{b_key['id']}"))["status"] == "enabled"
    r = await api.call("POST", "/api/me/keys", token, json={"name": "x", "group": "nope"})
    assert_error(r, 404, "not_found", "group")
    revoked = await api.ok("POST", f"/api/me/keys/{mine['id']}/revoke", token)
    assert revoked["status"] == "revoked"

    # Usage: mine without the operator-only channel; another account's trace is 404.
    a_trace = await insert_usage(api.engine, a, mine["id"])
    record = await api.ok("GET", f"/api/me/usage/{a_trace}", token)
    assert record["trace_id"] == a_trace and "channel_id" not in record
    assert [u["trace_id"] for u in (await api.ok("GET", "/api/me/usage?limit=5", token))["usage"]] == [
        a_trace
    ]
    assert_error(await api.call("GET", f"/api/me/usage/{b_trace}", token), 404, "not_found", "trace_id")
    admin_view = await api.ok("GET", f"/api/admin/usage/{b_trace}")
    assert admin_view["channel_id"] == "chan-1"
    assert_error(await api.call("GET", "/api/me/usage?limit=0", token), 422, "unprocessable_entity", "limit")
    assert (await api.ok("GET", "/api/me/balance", token))["available_nano"] == 0

    # A customer is not staff; the admin token is not an account.
    assert_error(await api.call("GET", "/api/admin/groups", token), 403, "permission_denied")
    assert_error(await api.call("GET", "/api/me"), 403, "permission_denied")

    # Sessions are stored hashed; logout ends the session.
    async with api.engine.connect() as conn:
        hashes = list((await conn.execute(select(sessions.c.token_hash))).scalars())
    assert token not in hashes and len(hashes) == 1
    assert (await api.ok("POST", "/api/auth/logout", token)) == {"logged_out": True}
    assert_error(await api.call("GET", "/api/me", token), 401, "unauthenticated")


async def test_roles_and_suspension(api: Api) -> None:
    await api.ok("POST", "/api/admin/groups", json={"name": "default", "multiplier": "1"})
    await api.account("help@example.com", "support")
    admin_id = await api.account("boss@example.com", "admin")
    customer = await api.account("c@example.com")
    help_token = await api.login("help@example.com")
    boss_token = await api.login("boss@example.com")

    # Support reads and credits, but changes no groups, models, channels, accounts or keys.
    assert (await api.ok("GET", "/api/admin/groups", help_token))["groups"][0]["name"] == "default"
    credited = await api.ok(
        "POST",
        f"/api/admin/accounts/{customer}/credits",
        help_token,
        json={"amount": "1", "kind": "voucher", "reason": "compensation"},
    )
    assert credited["voucher_nano"] == 1_000_000_000
    for method, path, body in (
        ("POST", "/api/admin/groups", {"name": "g2", "multiplier": "1"}),
        ("PATCH", "/api/admin/groups/default", {"multiplier": "0.1"}),
        ("PUT", "/api/admin/models/m", {"input": "1", "output": "1"}),
        ("POST", f"/api/admin/accounts/{customer}/suspend", None),
        ("POST", f"/api/admin/accounts/{customer}/keys", {"name": "k", "group": "default"}),
    ):
        r = await api.call(method, path, help_token, json=body)
        assert_error(r, 403, "permission_denied")

    # An admin session may change things; the audit actor is the account.
    boss_group = await api.ok("POST", "/api/admin/groups", boss_token, json={"name": "g2", "multiplier": "2"})
    assert boss_group["multiplier"] == "2"
    assert admin_id

    # Suspension: sign-in refused, live sessions refused, activation restores.
    c_token = await api.login("c@example.com")
    await api.ok("POST", f"/api/admin/accounts/{customer}/suspend", json={"reason": "abuse"})
    assert_error(await api.call("GET", "/api/me", c_token), 403, "permission_denied")
    r = await api.call("POST", "/api/auth/login", None, json={"email": "c@example.com", "password": PASSWORD})
    assert_error(r, 403, "permission_denied")
    await api.ok("POST", f"/api/admin/accounts/{customer}/activate")
    assert (await api.ok("GET", "/api/me", c_token))["status"] == "active"


async def test_openapi_and_unexpected_errors(api: Api) -> None:
    doc = await api.ok("GET", "/api/openapi.json", None)
    paths = doc["paths"]
    for path in (
        "/api/admin/groups",
        "/api/admin/groups/{name}",
        "/api/admin/models/{name}",
        "/api/admin/channels",
        "/api/admin/accounts",
        "/api/admin/accounts/{account_id}/keys",
        "/api/admin/keys/{key_id}/revoke",
        "/api/admin/accounts/{account_id}/credits",
        "/api/admin/accounts/{account_id}/balance",
        "/api/admin/accounts/{account_id}/usage",
        "/api/admin/usage/{trace_id}",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/me",
        "/api/me/keys",
        "/api/me/usage/{trace_id}",
    ):
        assert path in paths, path
    credit = doc["components"]["schemas"]["CreditCreate"]["properties"]["amount"]
    assert credit["type"] == "string"  # money is a decimal string in the contract
    assert "HTTPBearer" in doc["components"]["securitySchemes"]

    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    api.app.add_api_route("/api/boom", boom)
    r = await api.call("GET", "/api/boom")
    assert_error(r, 500, "internal_error")
    assert "secret internal detail" not in r.text and "RuntimeError" not in r.text
