"""Security headers on every response and trusted proxies, at Tollway's ASGI boundary
(the whole app: data plane, control API, console, status page, ops endpoints, errors).

* every response, whatever answered it, carries nosniff, X-Frame-Options, a CSP and a
  referrer policy, each once; HSTS only over HTTPS (direct or through a trusted proxy);
* X-Forwarded-For / -Proto from a peer not in TOLLWAY_TRUSTED_PROXIES change nothing (key IP
  allow lists, usage records, sign-in throttles, Secure cookies); from a trusted peer the
  client is the right-most untrusted address.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from edge_rig import EdgeRig, Reply, edge_rig
from sqlalchemy import select

from tollway.app import TollwayApp
from tollway.security.headers import API_CSP, CONSOLE_CSP, STATUS_CSP
from tollway.settings import Settings
from tollway.store.tables import usage_records

PROXY = ("10.1.2.3", 50000)
FORM = {"content-type": "application/x-www-form-urlencoded"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[EdgeRig]:
    async with edge_rig(tmp_path, trusted_proxies="10.0.0.0/8, ::1", hsts_max_age_s=31536000) as r:
        yield r


def assert_headers(reply: Reply, csp: bytes, referrer: str) -> None:
    assert reply.one("x-content-type-options") == "nosniff"
    assert reply.one("x-frame-options") == "DENY"
    assert reply.one("content-security-policy") == csp.decode()
    assert reply.one("referrer-policy") == referrer
    assert "frame-ancestors 'none'" in reply.one("content-security-policy")


async def test_every_kind_of_response_carries_the_security_headers(rig: EdgeRig) -> None:
    key = {"authorization": f"Bearer {rig.secret}"}
    api_cases = {
        "chat JSON": await rig.call("POST", "/v1/chat/completions", CHAT, key),
        "chat SSE": await rig.call("POST", "/v1/chat/completions", {**CHAT, "stream": True}, key),
        "data plane 401": await rig.call("POST", "/v1/chat/completions", CHAT, {"authorization": "Bearer x"}),
        "data plane 404": await rig.call("GET", "/v1/no-such-thing", None, key),
        "data plane 400": await rig.call("POST", "/v1/chat/completions", b"{", key),
        "models": await rig.call("GET", "/v1/models", None, key),
        "openapi": await rig.call("GET", "/api/openapi.json"),
        "control 401": await rig.call("GET", "/api/admin/groups"),
        "control 404": await rig.call("GET", "/api/no-such-route"),
        "control 422": await rig.call("POST", "/api/auth/login", b"[]", {"content-type": "application/json"}),
        "top 404": await rig.call("GET", "/nothing-here"),
        "root redirect": await rig.call("GET", "/"),
        "healthz": await rig.call("GET", "/healthz"),
        "readyz": await rig.call("GET", "/readyz"),
        "metrics": await rig.call("GET", "/metrics"),
        "status JSON": await rig.call("GET", "/status.json"),
    }
    assert api_cases["chat JSON"].status == 200, api_cases["chat JSON"].body
    assert api_cases["chat SSE"].status == 200
    assert api_cases["chat SSE"].one("content-type").startswith("text/event-stream")
    statuses = {name: reply.status for name, reply in api_cases.items()}
    assert [statuses[k] for k in ("data plane 401", "data plane 404", "data plane 400")] == [401, 404, 400]
    assert [statuses[k] for k in ("control 401", "control 404", "top 404")] == [401, 404, 404]
    for name, reply in api_cases.items():
        assert reply.status < 500, (name, reply.status, reply.body[:200])
        assert_headers(reply, API_CSP, "no-referrer")
        assert not reply.all("strict-transport-security"), name  # plain HTTP
    console_cases = {
        "login page": await rig.call("GET", "/console/login"),
        "signed-out page": await rig.call("GET", "/console/keys"),
        "stylesheet": await rig.call("GET", "/console/static/console.css"),
        "script": await rig.call("GET", "/console/static/console.js"),
        "vendor script": await rig.call("GET", "/console/static/vendor/chart.umd.js"),
        "missing static": await rig.call("GET", "/console/static/nope.js"),
        "console 404": await rig.call("GET", "/console/no-such-page"),
        "csrf refusal": await rig.call("POST", "/console/login", b"email=a", FORM),
    }
    assert console_cases["login page"].status == 200
    assert console_cases["stylesheet"].status == 200
    assert console_cases["missing static"].status == 404
    for name, reply in console_cases.items():
        assert reply.status < 500, (name, reply.status)
        assert_headers(reply, CONSOLE_CSP, "same-origin")
    status_page = await rig.call("GET", "/status")
    assert status_page.status == 200 and b"<style>" in status_page.body
    assert_headers(status_page, STATUS_CSP, "no-referrer")


async def test_the_answers_of_an_app_not_started_carry_them_too(tmp_path: Path) -> None:
    app = TollwayApp(Settings(data_dir=tmp_path, secret_key="k" * 32))
    try:
        reply = await EdgeRig(app, None, "").call("POST", "/v1/chat/completions", CHAT)  # type: ignore[arg-type]
        assert reply.status == 503 and reply.json()["error"]["code"] == "starting"
        assert_headers(reply, API_CSP, "no-referrer")
    finally:
        await app.engine.dispose()


async def test_console_pages_need_nothing_their_policy_forbids(rig: EdgeRig) -> None:
    """The console's CSP allows no inline script or style: its pages have neither (a JSON
    data block is no script), and every asset they load is served from the console itself."""
    page = (await rig.call("GET", "/console/login")).body.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", page)
    assert " style=" not in page and "<style" not in page and "javascript:" not in page
    for asset in re.findall(r'(?:src|href)="(/console/static/[^"]+)"', page):
        assert (await rig.call("GET", asset)).status == 200, asset


async def test_hsts_only_over_https(rig: EdgeRig) -> None:
    direct_tls = await rig.call("GET", "/healthz", scheme="https")
    assert direct_tls.one("strict-transport-security") == "max-age=31536000"
    via_proxy = await rig.call("GET", "/console/login", None, {"x-forwarded-proto": "https"}, peer=PROXY)
    assert via_proxy.one("strict-transport-security") == "max-age=31536000"
    assert_headers(via_proxy, CONSOLE_CSP, "same-origin")
    spoofed = await rig.call("GET", "/healthz", None, {"x-forwarded-proto": "https"})  # not a proxy
    assert not spoofed.all("strict-transport-security")
    assert not (await rig.call("GET", "/healthz")).all("strict-transport-security")


async def test_hsts_is_off_by_default(tmp_path: Path) -> None:
    async with edge_rig(tmp_path) as rig:
        reply = await rig.call("GET", "/healthz", scheme="https")
        assert reply.status == 200 and not reply.all("strict-transport-security")
        assert_headers(reply, API_CSP, "no-referrer")


async def allowed_key(rig: EdgeRig, ip_allow: str) -> dict[str, str]:
    key = await rig.admin.create_key(rig.account_id, name=f"ip-{ip_allow}", group="g", ip_allow=ip_allow)
    assert rig.app.gateway is not None
    await rig.app.gateway.config.refresh(force=True)
    return {"authorization": f"Bearer {key['secret']}"}


async def client_ip_of(rig: EdgeRig, reply: Reply) -> str | None:
    trace = reply.one("x-request-id")
    for _ in range(200):
        async with rig.app.engine.connect() as conn:
            row = (
                await conn.execute(select(usage_records.c.client_ip).where(usage_records.c.trace_id == trace))
            ).first()
        if row is not None:
            return row.client_ip  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no usage record for {trace}")


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(rig: EdgeRig) -> None:
    key = await allowed_key(rig, "198.51.100.7")
    spoof = {**key, "x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
    r = await rig.call("POST", "/v1/chat/completions", CHAT, spoof)
    assert r.status == 403, r.body
    assert "203.0.113.9" in r.json()["error"]["message"]  # judged by the TCP peer
    # a key without an allow list: the usage record names the peer, not the claimed address
    plain = {"authorization": f"Bearer {rig.secret}", "x-forwarded-for": "198.51.100.7"}
    r = await rig.call("POST", "/v1/chat/completions", CHAT, plain)
    assert r.status == 200
    assert await client_ip_of(rig, r) == "203.0.113.9"


async def test_a_trusted_proxy_names_the_client(rig: EdgeRig) -> None:
    key = await allowed_key(rig, "198.51.100.0/24")
    for xff in ("198.51.100.7", "198.51.100.7, 10.9.9.9", "192.0.2.66, 198.51.100.7:5123, 10.9.9.9"):
        r = await rig.call("POST", "/v1/chat/completions", CHAT, {**key, "x-forwarded-for": xff}, peer=PROXY)
        assert r.status == 200, (xff, r.body)
        assert await client_ip_of(rig, r) == "198.51.100.7"
    # the client wrote an allowed address to the left of its own: the proxy appended the real one
    claimed = {**key, "x-forwarded-for": "198.51.100.7, 192.0.2.66"}
    r = await rig.call("POST", "/v1/chat/completions", CHAT, claimed, peer=PROXY)
    assert r.status == 403 and "192.0.2.66" in r.json()["error"]["message"]
    # two header lines are one list; IPv6 proxies (::1 is trusted) and IPv4-mapped peers
    two = [*key.items(), ("x-forwarded-for", "192.0.2.66"), ("x-forwarded-for", "198.51.100.8")]
    assert (await rig.call("POST", "/v1/chat/completions", CHAT, two, peer=("::1", 1))).status == 200
    mapped = [*key.items(), ("x-forwarded-for", "198.51.100.9")]
    r = await rig.call("POST", "/v1/chat/completions", CHAT, mapped, peer=("::ffff:10.0.0.1", 1))
    assert r.status == 200
    # no X-Forwarded-For at all: the proxy itself is the client
    assert (await rig.call("POST", "/v1/chat/completions", CHAT, key, peer=PROXY)).status == 403


async def test_sign_in_throttles_count_the_real_client(rig: EdgeRig) -> None:
    throttle = rig.app.sync.throttles.login

    async def failures(ip: str) -> int:
        return (await throttle.store.counts([f"login:ip:{ip}"], throttle.window_s))[0]

    body = {"email": "nobody@example.test", "password": "wrong"}
    hdrs = {"x-forwarded-for": "198.51.100.20"}
    assert (await rig.call("POST", "/api/auth/login", body, hdrs)).status == 401
    assert (await failures("203.0.113.9"), await failures("198.51.100.20")) == (1, 0)
    assert (await rig.call("POST", "/api/auth/login", body, hdrs, peer=PROXY)).status == 401
    assert (await failures("203.0.113.9"), await failures("198.51.100.20")) == (1, 1)
    assert await failures(PROXY[0]) == 0  # the proxy is not blamed for its clients


async def console_login(rig: EdgeRig, headers: dict[str, str], **kw: object) -> Reply:
    form = b"csrf=tok&email=edge%40example.test&password=correct+horse+battery"
    hdrs = {**FORM, "cookie": "tw_csrf=tok", **headers}
    reply = await rig.call("POST", "/console/login", form, hdrs, **kw)  # type: ignore[arg-type]
    assert reply.status == 303, reply.body[:300]
    return reply


def session_cookie(reply: Reply) -> str:
    return next(c for c in reply.all("set-cookie") if c.startswith("tw_session="))


async def test_session_cookies_are_secure_over_https_only(rig: EdgeRig) -> None:
    secure = re.compile(r";\s*secure\b", re.IGNORECASE)
    assert not secure.search(session_cookie(await console_login(rig, {})))
    assert secure.search(session_cookie(await console_login(rig, {}, scheme="https")))
    via_proxy = await console_login(rig, {"x-forwarded-proto": "https"}, peer=PROXY)
    assert secure.search(session_cookie(via_proxy))
    assert via_proxy.all("strict-transport-security")
    spoofed = await console_login(rig, {"x-forwarded-proto": "https"})  # not from a proxy
    assert not secure.search(session_cookie(spoofed))
    for reply in (via_proxy, spoofed):
        cookie = session_cookie(reply).lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
