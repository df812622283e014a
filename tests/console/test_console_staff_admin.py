"""The admin pages in a real Chromium: groups (create, edit, a bad multiplier refused on the
form; the customer's prices page and ``/v1/models`` follow), models and prices (an override
now and a scheduled one), channels (disable and re-enable with the audit log showing it, a
real test call through the stack's fake upstream, create and edit with a write-only key),
settings (a currency's rate, the sign-up switch), code batch revocation; support sees every
page without forms and each POST is 404 with nothing changed; customers get 404; screenshots
in English and zh-CN at desktop and phone width."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from playwright.sync_api import Browser, Page

from e2e.stack import http_json, poll
from tollway.services.operator_settings import OperatorSettings

from .conftest import DESKTOP, PHONE, Console, Recorder, new_page, shot, sign_in

PAGES = ("groups", "models", "channels", "settings")
ENGLISH_MARKERS = [
    "Groups",
    "Models and prices",
    "Channels",
    "Settings",
    "Save",
    "Visible to customers",
    "Concurrency per account",
    "Add a price override",
    "Cache write",
    "Test call",
    "Last error",
    "Priority",
    "Weight",
    "Payment currencies",
    "Payment providers",
    "Sign-up",
    "not configured",
    "closed",
    "Reason",
]


def csrf_of(page: Page) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def admin_page(console: Console, browser: Browser, recorder: Recorder, **kw: Any) -> tuple[Any, Page]:
    ctx, page = new_page(browser, recorder, **kw)
    sign_in(page, console.url, console.admin)
    return ctx, page


def group(console: Console, name: str) -> dict[str, Any] | None:
    return next(
        (g for g in console.admin_api("GET", "/api/admin/groups")["groups"] if g["name"] == name), None
    )


def channel(console: Console, name: str) -> dict[str, Any]:
    return next(c for c in console.admin_api("GET", "/api/admin/channels")["channels"] if c["name"] == name)


def model(console: Console, name: str) -> dict[str, Any]:
    return next(m for m in console.admin_api("GET", "/api/admin/models")["models"] if m["model"] == name)


def currency(console: Console, code: str) -> dict[str, Any] | None:
    docs = console.admin_api("GET", "/api/admin/payments/prices")
    rows = docs["currencies"]
    return next((c for c in rows if c["currency"] == code), None)


def signup_enabled(console: Console) -> bool:
    return console.prov._run(OperatorSettings(console.prov.engine, {"signup_enabled": True}).signup_enabled())


def test_admin_groups_and_prices(console: Console, browser: Browser, recorder: Recorder) -> None:
    name = f"g{uuid.uuid4().hex[:6]}"
    ctx, page = admin_page(console, browser, recorder)
    page.goto(f"{console.url}/console/staff/groups")
    form = page.locator("form[action='/console/staff/groups']")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=label]").fill("Trial")
    form.locator("input[name=multiplier]").fill("0.3.3")  # not a decimal: refused on the form
    form.locator("input[name=models]").fill("gpt-4o-mini")
    form.locator("button[type=submit]").click()
    assert "not a decimal" in page.locator("#form-error").inner_text()
    assert group(console, name) is None
    form.locator("input[name=multiplier]").fill("0.125")  # the form kept the other fields
    form.locator("input[name=rpm]").fill("120")
    form.locator("button[type=submit]").click()
    assert page.locator("#form-error").count() == 0, page.inner_text("main")
    assert page.locator(f"tr[data-group='{name}'] .multiplier").inner_text() == "×0.125"
    g = group(console, name)
    assert g is not None and g["multiplier"] == "0.125" and g["rpm"] == 120 and g["visible"]
    assert g["models"] == ["gpt-4o-mini"] and g["label"] == "Trial"

    # edit: a new multiplier, a second model, a limit cleared, a reason for the audit log
    page.click(f"tr[data-group='{name}'] a[href*='edit=']")
    form = page.locator(f"form[action='/console/staff/groups/{name}']")
    assert form.locator("input[name=multiplier]").input_value() == "0.125"
    form.locator("input[name=multiplier]").fill("0.25")
    form.locator("input[name=models]").fill("gpt-4o-mini, gpt-4o")
    form.locator("input[name=rpm]").fill("")
    form.locator("input[name=reason]").fill("launch pricing")
    form.locator("button[type=submit]").click()
    assert page.locator(f"tr[data-group='{name}'] .multiplier").inner_text() == "×0.25"
    g = group(console, name)
    assert g is not None and g["multiplier"] == "0.25" and g["rpm"] is None
    assert g["models"] == ["gpt-4o", "gpt-4o-mini"]
    page.goto(f"{console.url}/console/staff/audit")
    assert "launch pricing" in page.locator("tr", has_text=f"group:{name}").first.inner_text()

    # a price override from now (gpt-4o-mini) and one scheduled for later (gpt-4o)
    page.goto(f"{console.url}/console/staff/models?model=gpt-4o-mini")
    assert page.locator("tr[data-model='claude-opus-4-5']").inner_text().count("6.25") == 1  # cache write 5m
    form = page.locator("form[action='/console/staff/models']")
    assert form.locator("input[name=model]").input_value() == "gpt-4o-mini"
    form.locator("input[name=input]").fill("0.2")
    form.locator("input[name=output]").fill("0.8")
    form.locator("input[name=reason]").fill("supplier discount")
    form.locator("button[type=submit]").click()
    assert page.locator("#saved").count() == 1, page.inner_text("main")
    row = page.locator("tr[data-model='gpt-4o-mini']").inner_text()
    assert "0.2" in row and "0.8" in row and "operator override" in row
    assert model(console, "gpt-4o-mini")["prices"]["input"] == "0.2"
    form.locator("input[name=model]").fill("gpt-4o")
    form.locator("input[name=output]").fill("9")
    form.locator("input[name=effective_from]").fill("2099-01-01T00:00")
    form.locator("button[type=submit]").click()
    assert "2099-01-01 00:00" in page.locator("#scheduled").inner_text()
    assert Decimal(model(console, "gpt-4o")["prices"]["output"]) == 10  # not in force yet
    form.locator("input[name=model]").fill("gpt-4o-mini")
    form.locator("input[name=input]").fill("-1")  # a bad price: refused in plain words
    form.locator("button[type=submit]").click()
    assert page.locator("#form-error").count() == 1, page.inner_text("main")
    assert model(console, "gpt-4o-mini")["prices"]["input"] == "0.2"
    ctx.close()

    # the customer's prices page and /v1/models follow the group
    customer = console.user(credit="1")
    key = console.prov.create_key(customer.id, name="k", group=name)
    cctx, cpage = new_page(browser, recorder)
    sign_in(cpage, console.url, customer)
    cpage.goto(f"{console.url}/console/prices?group={name}")
    assert "×0.25" in cpage.locator("tr.current").inner_text()
    mini = cpage.locator("tr", has_text="gpt-4o-mini").last.inner_text()
    assert "0.05" in mini and "0.2" in mini  # 0.2 × 0.25, the override times the multiplier
    cctx.close()

    def listed() -> set[str] | None:
        status, _, doc = http_json(
            "GET", f"{console.url}/v1/models", headers={"authorization": f"Bearer {key['secret']}"}
        )
        ids = {m["id"] for m in doc["data"]} if status == 200 else set()
        return ids if ids == {"gpt-4o", "gpt-4o-mini"} else None

    poll(listed, timeout=10, what="/v1/models to list the group's models")


def test_admin_channels(console: Console, browser: Browser, recorder: Recorder) -> None:
    ctx, page = admin_page(console, browser, recorder)
    page.goto(f"{console.url}/console/staff/channels")
    assert page.locator("tr[data-channel='main'] .health").inner_text().strip().startswith("closed")
    assert "upstream-main" not in page.content()  # credentials are never shown

    # disable and re-enable, each with a reason that the audit log shows
    why = f"maintenance {uuid.uuid4().hex[:6]}"
    row = page.locator("tr[data-channel='fo-backup']")
    row.locator("form.toggle input[name=reason]").fill(why)
    row.locator("form.toggle button").click()
    assert page.locator("tr[data-channel='fo-backup'] .channel-status").inner_text() == "disabled"
    assert channel(console, "fo-backup")["status"] == "disabled"
    row = page.locator("tr[data-channel='fo-backup']")
    row.locator("form.toggle input[name=reason]").fill(why + " done")
    row.locator("form.toggle button").click()
    assert page.locator("tr[data-channel='fo-backup'] .channel-status").inner_text() == "enabled"
    assert channel(console, "fo-backup")["status"] == "enabled"
    page.goto(f"{console.url}/console/staff/audit")
    audit = page.locator("table.audit").inner_text()
    assert why in audit and why + " done" in audit

    # a real 1-token test call through the stack's channel (the fake upstream)
    before = console.stack.fake_stats()
    page.goto(f"{console.url}/console/staff/channels")
    page.locator("tr[data-channel='main'] button.test").click()
    result = page.locator("#test-result")
    assert "ok" in (result.get_attribute("class") or ""), result.inner_text()
    assert "HTTP 200" in result.inner_text() and int(page.locator("#test-ms").inner_text()) >= 0
    assert console.stack.fake_stats() != before

    # create a channel (the key is write-only), then edit it and set a new key
    name = f"ch{uuid.uuid4().hex[:6]}"
    form = page.locator("form[action='/console/staff/channels']")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=base_url]").fill("http://127.0.0.1:9/v1")  # nothing listens there
    form.locator("input[name=api_key]").fill("sk-first-secret")
    form.locator("input[name=models]").fill("gpt-4o-mini")
    form.locator("input[name=groups]").fill("nobody-uses-this")
    form.locator("input[name=weight]").fill("0")  # refused: weight must be at least 1
    form.locator("button[type=submit]").click()
    assert "weight" in page.locator("#form-error").inner_text()
    assert form.locator("input[name=api_key]").input_value() == ""  # a secret is never echoed
    form.locator("input[name=api_key]").fill("sk-first-secret")
    form.locator("input[name=weight]").fill("2")
    form.locator("button[type=submit]").click()
    assert page.locator("#saved").count() == 1, page.inner_text("main")
    made = channel(console, name)
    assert made["weight"] == 2 and made["has_credential"] and made["groups"] == ["nobody-uses-this"]
    page.click(f"tr[data-channel='{name}'] a[href*='edit=']")
    form = page.locator(f"form[action='/console/staff/channels/{name}']")
    assert form.locator("input[name=api_key]").input_value() == ""
    assert "sk-first-secret" not in page.content()
    form.locator("input[name=priority]").fill("3")
    form.locator("input[name=api_key]").fill("sk-second-a, sk-second-b")
    form.locator("button[type=submit]").click()
    assert channel(console, name)["priority"] == 3
    assert "sk-second" not in page.content()

    # once the gateway has loaded it: two credentials, and a test call that fails in plain words
    def loaded() -> bool | None:
        page.goto(f"{console.url}/console/staff/channels")
        return True if page.locator(f"tr[data-channel='{name}'] .cred").count() == 2 else None

    poll(loaded, timeout=10, what="the new channel in the running gateway")
    page.locator(f"tr[data-channel='{name}'] .cred[data-cred='1'] button.test").click()
    result = page.locator("#test-result")
    assert "error" in (result.get_attribute("class") or "") and f"{name}#2" in result.inner_text()
    console.admin_api("PATCH", f"/api/admin/channels/{name}", {"enabled": False})
    ctx.close()


def test_admin_settings_and_code_revocation(console: Console, browser: Browser, recorder: Recorder) -> None:
    ctx, page = admin_page(console, browser, recorder)
    page.goto(f"{console.url}/console/staff/settings")
    assert "not configured" in page.locator("tr[data-provider='stripe']").inner_text()
    # a new currency at a fixed price, then switched to the exchange rate plus a margin
    form = page.locator("form[action='/console/staff/settings/currencies']")
    form.locator("input[name=currency]").fill("CNY")
    form.locator("input[name=price_per_credit]").fill("7.2")
    form.locator("input[name=presets]").fill("50, 100")
    form.locator("input[name=enabled]").check()
    form.locator("button[type=submit]").click()
    assert page.locator("#saved").count() == 1, page.inner_text("main")
    assert page.locator("tr[data-currency='CNY'] .price").inner_text() == "7.2"
    form = page.locator("form[action='/console/staff/settings/currencies/CNY']")
    form.locator("select[name=mode]").select_option("fx")
    form.locator("input[name=fx_rate]").fill("7")
    form.locator("input[name=margin]").fill("abc")
    form.locator("button[type=submit]").click()
    assert "margin" in page.locator("#form-error").inner_text()
    assert currency(console, "CNY")["price_per_credit"] == "7.2"  # type: ignore[index]
    form = page.locator("form[action='/console/staff/settings/currencies/CNY']")
    form.locator("input[name=margin]").fill("0.1")
    form.locator("input[name=reason]").fill("monthly rate review")
    form.locator("button[type=submit]").click()
    assert page.locator("tr[data-currency='CNY'] .price").inner_text() == "7.7"
    cny = currency(console, "CNY")
    assert cny is not None and cny["mode"] == "fx" and cny["fx_rate"] == "7" and cny["enabled"]

    # the sign-up switch, both ways
    was = signup_enabled(console)
    page.locator("#signup-form input[name=reason]").fill("invite only for now")
    page.locator("#signup-form button").click()
    assert signup_enabled(console) is (not was)
    page.locator("#signup-form button").click()
    assert signup_enabled(console) is was
    page.goto(f"{console.url}/console/staff/audit")
    audit = page.locator("table.audit").inner_text()
    assert (
        "monthly rate review" in audit
        and "invite only for now" in audit
        and "setting:signup_enabled" in audit
    )

    # revoke a batch's unused codes; a revoked code cannot be redeemed
    label = f"promo-{uuid.uuid4().hex[:6]}"
    batch = console.admin_api(
        "POST", "/api/admin/codes", {"count": 2, "value": "1", "kind": "cash", "label": label}
    )
    customer = console.user()
    token = console.api_login(customer.email)
    redeem = {"authorization": f"Bearer {token}"}
    status, _, _ = http_json("POST", f"{console.url}/api/me/redeem", {"code": batch["codes"][0]}, redeem)
    assert status == 200
    page.goto(f"{console.url}/console/staff/codes")
    row = page.locator("tr", has_text=label)
    row.locator("form.revoke input[name=reason]").fill("leaked on a forum")
    row.locator("form.revoke button").click()
    assert page.locator("#revoked").inner_text().endswith("1")
    assert page.locator("tr", has_text=label).locator("form.revoke").count() == 0
    status, _, doc = http_json("POST", f"{console.url}/api/me/redeem", {"code": batch["codes"][1]}, redeem)
    assert status == 409 and "revoked" in str(doc)
    assert console.stack.balance(customer.id)["cash_nano"] == 1_000_000_000
    ctx.close()


def test_support_reads_only_and_customers_get_404(
    console: Console, browser: Browser, recorder: Recorder
) -> None:
    batch = console.admin_api("POST", "/api/admin/codes", {"count": 1, "value": "1", "kind": "cash"})
    before = {
        "groups": console.admin_api("GET", "/api/admin/groups"),
        "channels": console.admin_api("GET", "/api/admin/channels"),
        "models": console.admin_api("GET", "/api/admin/models"),
        "prices": console.admin_api("GET", "/api/admin/payments/prices"),
        "signup": signup_enabled(console),
    }
    support = console.user("support")
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, support)
    for p in PAGES:
        resp = page.goto(f"{console.url}/console/staff/{p}")
        assert resp is not None and resp.status == 200, p
        assert page.locator("main form").count() == 0, p
        assert page.locator("main button").count() == 0, p
    page.goto(f"{console.url}/console/staff/groups?edit=x1")
    assert page.locator("main form").count() == 0
    page.goto(f"{console.url}/console/staff/codes")
    assert page.locator("form.revoke").count() == 0
    token = csrf_of(page)
    posts = {
        "groups": {"name": "support-made", "multiplier": "0.01", "visible": "1"},
        "groups/x1": {"multiplier": "0.01", "visible": "1"},
        "models": {"model": "gpt-4o", "input": "0.01", "output": "0.01"},
        "channels": {
            "name": "support-made",
            "type": "openai",
            "base_url": "http://x",
            "api_key": "k",
            "models": "m",
        },
        "channels/main": {"type": "openai", "base_url": "http://x", "models": "m"},
        "channels/main/disable": {},
        "channels/main/test": {},
        "settings/currencies": {"currency": "EUR", "mode": "fixed", "price_per_credit": "1"},
        "settings/currencies/USD": {"mode": "fixed", "price_per_credit": "100"},
        "settings/signup": {"enabled": "" if before["signup"] else "1"},
        f"codes/{batch['batch_id']}/revoke": {},
    }
    for path, fields in posts.items():
        posted = page.request.post(f"{console.url}/console/staff/{path}", form={"csrf": token, **fields})
        assert posted.status == 404, (path, posted.status)
    assert console.admin_api("GET", "/api/admin/groups") == before["groups"]
    assert console.admin_api("GET", "/api/admin/channels") == before["channels"]
    assert console.admin_api("GET", "/api/admin/models") == before["models"]
    assert console.admin_api("GET", "/api/admin/payments/prices") == before["prices"]
    assert signup_enabled(console) is before["signup"]
    batches = console.admin_api("GET", "/api/admin/codes")
    rows = batches["batches"]
    assert next(b for b in rows if b["batch_id"] == batch["batch_id"])["states"] == {"active": 1}
    ctx.close()

    customer = console.user()
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, customer)
    for p in PAGES:
        assert page.goto(f"{console.url}/console/staff/{p}").status == 404  # type: ignore[union-attr]
    ctx.close()


def test_staff_admin_pages_in_both_languages_with_screenshots(
    console: Console, browser: Browser, recorder: Recorder
) -> None:
    for lang in ("en", "zh_CN"):
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            ctx, page = admin_page(console, browser, recorder, lang=lang, viewport=viewport)
            for p in PAGES:
                resp = page.goto(f"{console.url}/console/staff/{p}")
                assert resp is not None and resp.status == 200, (p, resp and resp.status)
                shot(page, f"staff-{p}.{lang}.{width}")
                if lang == "zh_CN":
                    text = page.locator("body").inner_text()
                    left = [m for m in ENGLISH_MARKERS if m in text]
                    assert not left, f"untranslated on /console/staff/{p}: {left}"
            ctx.close()
