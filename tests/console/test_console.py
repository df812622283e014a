"""The console in a real Chromium: a customer's journey (key, SDK calls, usage arithmetic
against the ledger, CSV, redemption code), a support user crediting an order by its number
with an audited reason, cross-account 404s, CSRF and throttling, cookie flags, and every page
in English and zh-CN at desktop and phone width (screenshots into docs/screenshots/)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime

from playwright.sync_api import Browser, Page

from e2e.calls import fake
from tollway.money import nano_to_credits

from .conftest import DESKTOP, PHONE, Console, Recorder, new_page, shot, sign_in

ENGLISH_MARKERS = [
    "Dashboard",
    "Sign out",
    "Available",
    "API keys",
    "Wallet",
    "Create a key",
    "Latest calls",
    "Redeem",
    "Quick start",
    "Errors and what to do",
    "The arithmetic",
    "Find by account ID",
    "Audit log",
    "Groups and prices",
    "Spent today",
    "No calls yet",
    "Your keys",
    "Export CSV",
    "Top up",
    "Refund",
    "Order number",
    "Reason",
    "Time (UTC)",
    "Billing",
    "By model",
    "Calls",
    "enabled",
    "Spent",
]


def call(console: Console, secret: str, n: int = 2) -> list[str]:
    traces = []
    with console.stack.client(secret) as client:
        for _ in range(n):
            resp = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], extra_body=fake()
            )
            assert resp._request_id
            traces.append(resp._request_id)
    for t in traces:
        console.stack.usage(t, wait=10)
    return traces


def csrf_of(page: Page) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def test_customer_journey(console: Console, browser: Browser, recorder: Recorder) -> None:
    user = console.user(credit="5")
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, user.email)
    assert page.url.endswith("/console/")
    assert page.locator("#available").inner_text() == nano_to_credits(5_000_000_000)

    cookies = {c["name"]: c for c in ctx.cookies()}
    assert cookies["tw_session"]["httpOnly"] and cookies["tw_session"]["sameSite"] == "Strict"
    assert cookies["tw_csrf"]["httpOnly"] and cookies["tw_csrf"]["sameSite"] == "Strict"

    # create a key: the group list shows multipliers; the secret is shown once
    page.goto(f"{console.url}/console/keys")
    assert "×0.3" in page.inner_text("fieldset")
    page.fill("input[name=name]", "browser key")
    page.check("input[name=group][value=x1]")
    page.fill("input[name=expires]", "2030-01-31")
    page.click("form[action='/console/keys'] button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret
    page.goto(f"{console.url}/console/keys")
    assert page.locator("#new-secret").count() == 0 and secret not in page.content()
    assert "2030-01-31" in page.locator("tr", has_text="browser key").inner_text()

    traces = call(console, secret)

    # every call is in Usage, and its arithmetic matches the ledger's record
    page.goto(f"{console.url}/console/usage")
    for t in traces:
        assert page.locator(f"a[href='/console/usage/{t}']").count() == 1
    total = 0
    for t in traces:
        record = console.stack.usage(t)
        page.goto(f"{console.url}/console/usage/{t}")
        assert page.locator("#official").count() == 1, page.inner_text("main")
        assert page.locator("#official").inner_text() == nano_to_credits(record["official_cost_nano"])
        assert page.locator("#deduction").inner_text() == nano_to_credits(record["deduction_nano"])
        assert record["deduction_nano"] > 0
        total += record["deduction_nano"]
    bal = console.stack.balance(user.id)
    assert bal["cash_nano"] == 5_000_000_000 - total
    console.stack.audit_ok()

    # filters: by trace ID, and by a date range that ends today (inclusive)
    page.goto(f"{console.url}/console/usage?trace={traces[0]}")
    assert page.locator("a[href^='/console/usage/req_']").count() == 1
    today = datetime.now(UTC).date().isoformat()
    page.goto(f"{console.url}/console/usage?since={today}&until={today}")
    assert page.locator("a[href^='/console/usage/req_']").count() == len(traces)
    page.goto(f"{console.url}/console/usage?until=2000-01-01")
    assert page.locator("a[href^='/console/usage/req_']").count() == 0

    # CSV export: the same records, the same deductions
    page.goto(f"{console.url}/console/usage")
    with page.expect_download() as dl:
        page.click("#csv")
    with open(dl.value.path(), encoding="utf-8") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read())))
    by_trace = {r["trace_id"]: r for r in rows}
    assert set(traces) <= set(by_trace)
    for t in traces:
        assert by_trace[t]["deduction"] == nano_to_credits(console.stack.usage(t)["deduction_nano"])

    # billing: the key's total is the sum of the deductions
    page.goto(f"{console.url}/console/billing")
    row = page.locator("#billing-key tr", has_text="browser key").inner_text()
    assert nano_to_credits(total) in row and "\t2\t" in row

    # the dashboard shows the calls and draws the charts (Chart.js, served locally)
    page.goto(f"{console.url}/console/")
    assert page.locator(f"a[href='/console/usage/{traces[0]}']").count() == 1
    assert page.evaluate("typeof window.Chart") == "function"

    # redeem a code
    batch = console.admin_api("POST", "/api/admin/codes", {"count": 1, "value": "2", "kind": "cash"})
    page.goto(f"{console.url}/console/wallet")
    page.fill("input[name=code]", batch["codes"][0])
    page.click("form[action='/console/wallet/redeem'] button[type=submit]")
    assert page.locator("#wallet-ok").count() == 1, page.inner_text("main")
    assert console.stack.balance(user.id)["cash_nano"] == 7_000_000_000 - total

    # sign out ends the session
    page.click("form[action='/console/logout'] button[type=submit]")
    page.goto(f"{console.url}/console/keys")
    assert page.url.endswith("/console/login")
    ctx.close()


def _manual_order(console: Console, account_id: str) -> dict[str, object]:
    console.admin_api(
        "PUT",
        "/api/admin/payments/prices/CNY",
        {"price_per_credit": "7.2", "enabled": True, "reason": "console test"},
    )
    return console.admin_api(  # type: ignore[no-any-return]
        "POST",
        f"/api/admin/accounts/{account_id}/orders",
        {"provider": "manual", "amount": "72.00", "currency": "CNY"},
    )


def test_support_credits_order_with_audited_reason(
    console: Console, browser: Browser, recorder: Recorder
) -> None:
    customer = console.user()
    order = _manual_order(console, customer.id)
    number = str(order["order_number"])
    support = console.user("support")
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, support)
    assert page.url.endswith("/console/staff/overview")
    page.click("nav a[href='/console/staff']")  # Accounts: the search
    page.fill("input[name=q]", number)
    page.click("form[action='/console/staff'] button[type=submit]")
    assert customer.id in page.url
    page.click(f"a[href='/console/staff/orders/{number}']")
    reason = f"bank transfer seen {uuid.uuid4().hex[:6]}"
    page.fill("input[name=reason]", reason)
    page.click(f"form[action='/console/staff/orders/{number}/credit'] button[type=submit]")
    assert page.locator(".error").count() == 0, page.inner_text("main")
    assert console.stack.balance(customer.id)["cash_nano"] == 10_000_000_000
    # a voucher with a reason, from the account page
    page.goto(f"{console.url}/console/staff/accounts/{customer.id}")
    form = page.locator(f"form[action='/console/staff/accounts/{customer.id}/voucher']")
    form.locator("input[name=amount]").fill("1.5")
    form.locator("input[name=reason]").fill("sorry for the outage")
    form.locator("button").click()
    assert page.locator(".error").count() == 0, page.inner_text("main")
    assert console.stack.balance(customer.id)["voucher_nano"] == 1_500_000_000
    assert "sorry for the outage" in page.inner_text("table.audit")
    page.goto(f"{console.url}/console/staff/audit")
    assert reason in page.inner_text("table.audit")
    console.stack.audit_ok()

    # the customer sees the live rate before paying, then asks for a refund of that cash
    cctx, cpage = new_page(browser, recorder)
    sign_in(cpage, console.url, customer.email)
    cpage.goto(f"{console.url}/console/wallet?currency=CNY&amount=72")
    assert nano_to_credits(10_000_000_000) in cpage.locator("#quote").inner_text()
    cpage.fill("form[action='/console/wallet/refund'] input[name=amount]", "4")
    cpage.fill("form[action='/console/wallet/refund'] input[name=reason]", "project cancelled")
    cpage.click("form[action='/console/wallet/refund'] button[type=submit]")
    assert cpage.locator("#wallet-ok").count() == 1, cpage.inner_text("main")

    # an admin approves it from the queue; the customer sees the new status
    actx, apage = new_page(browser, recorder)
    sign_in(apage, console.url, console.admin)
    apage.goto(f"{console.url}/console/staff/refunds")
    apage.locator("tr", has_text="project cancelled").locator("form[action$='/approve'] button").click()
    assert apage.locator(".error").count() == 0, apage.inner_text("main")
    state = apage.locator("tr", has_text="project cancelled").locator(".refund-state").inner_text()
    assert state != "requested"
    cpage.goto(f"{console.url}/console/wallet")
    assert cpage.locator("tr", has_text="project cancelled").locator(".refund-state").inner_text() == state
    # its page says where the money goes; another account gets 404 for the same id
    cpage.locator("tr", has_text="project cancelled").locator("a").first.click()
    assert cpage.locator("#refund-lines").count() == 1 and "/console/refunds/" in cpage.url
    assert number in cpage.locator("#refund-lines").inner_text()
    refund_url = cpage.url
    octx, opage = new_page(browser, recorder)
    sign_in(opage, console.url, console.user())
    assert opage.goto(refund_url).status == 404  # type: ignore[union-attr]
    octx.close()
    # the order and refund request pages, in both languages and widths
    for lang in ("en", "zh_CN"):
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            lctx, lpage = new_page(browser, recorder, lang=lang, viewport=viewport)
            sign_in(lpage, console.url, customer)
            for url, name in ((f"{console.url}/console/orders/{number}", "order"), (refund_url, "refund")):
                assert lpage.goto(url).status == 200  # type: ignore[union-attr]
                shot(lpage, f"{name}.{lang}.{width}")
                if lang == "zh_CN":
                    text = lpage.locator("main").inner_text()
                    assert not [m for m in ENGLISH_MARKERS if m in text], (name, text)
            lctx.close()
    assert console.stack.balance(customer.id)["cash_nano"] == 6_000_000_000
    console.stack.audit_ok()
    actx.close()
    cctx.close()

    # support reads the group, price, channel and settings pages but has no form there
    # (test_console_staff_admin.py posts to each and gets 404)
    for path in ("/console/staff/groups", "/console/staff/models", "/console/staff/channels"):
        assert page.goto(f"{console.url}{path}").status == 200  # type: ignore[union-attr]
        assert page.locator("main form").count() == 0
    ctx.close()


def test_admin_creates_and_exports_codes_support_cannot(
    console: Console, browser: Browser, recorder: Recorder
) -> None:
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, console.admin)
    page.goto(f"{console.url}/console/staff/codes")
    label = f"launch-{uuid.uuid4().hex[:6]}"
    page.fill("form[action='/console/staff/codes'] input[name=count]", "3")
    page.fill("form[action='/console/staff/codes'] input[name=value]", "5")
    page.fill("form[action='/console/staff/codes'] input[name=label]", label)
    page.click("form[action='/console/staff/codes'] button[type=submit]")
    assert page.locator(".error").count() == 0, page.inner_text("main")
    row = page.locator("tr", has_text=label)
    with page.expect_download() as dl:
        row.locator("a.export").click()
    with open(dl.value.path(), encoding="utf-8") as fh:
        codes = [r for r in csv.DictReader(fh) if r["label"] == label]
    assert len(codes) == 3 and all(r["state"] == "active" for r in codes)
    ctx.close()

    support = console.user("support")
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, support)
    page.goto(f"{console.url}/console/staff/codes")
    assert page.locator("form[action='/console/staff/codes']").count() == 0
    assert page.locator("a.export").count() == 0
    token = csrf_of(page)
    resp = page.request.post(
        f"{console.url}/console/staff/codes", form={"csrf": token, "count": "1", "value": "9", "kind": "cash"}
    )
    assert resp.status == 404
    ctx.close()


def test_cross_account_is_404(console: Console, browser: Browser, recorder: Recorder) -> None:
    a = console.user(credit="1")
    key = console.prov.create_key(a.id, name="a", group="x1")
    [trace] = call(console, str(key["secret"]), 1)
    order = _manual_order(console, a.id)
    b = console.user()
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, b.email)
    assert page.locator("#low-balance").count() == 1  # nothing to spend: the warning shows
    base = console.url
    assert page.goto(f"{base}/console/usage/{trace}").status == 404  # type: ignore[union-attr]
    assert page.goto(f"{base}/console/orders/{order['order_number']}").status == 404  # type: ignore[union-attr]
    assert page.goto(f"{base}/console/staff").status == 404  # type: ignore[union-attr]
    assert page.goto(f"{base}/console/staff/accounts/{a.id}").status == 404  # type: ignore[union-attr]
    page.goto(f"{base}/console/keys")
    token = csrf_of(page)
    resp = page.request.post(f"{base}/console/keys/{key['id']}/revoke", form={"csrf": token}, max_redirects=0)
    assert resp.status == 404
    assert console.prov._run(console.prov.svc.get_key(str(key["id"])))["status"] == "enabled"
    # and without the CSRF token nothing happens at all
    resp = page.request.post(f"{base}/console/keys", form={"name": "x", "group": "x1"})
    assert resp.status == 403
    ctx.close()


def test_login_throttled_and_csrf(console: Console, browser: Browser, recorder: Recorder) -> None:
    user = console.user()
    ctx, page = new_page(browser, recorder)
    page.goto(f"{console.url}/console/login")
    for _ in range(5):
        page.fill("input[name=email]", user.email)
        page.fill("input[name=password]", "wrong-password")
        page.click("form[action='/console/login'] button[type=submit]")
        assert page.locator(".error").count() == 1
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "correct-horse-battery")
    with page.expect_response(re.compile(r"/console/login$")) as r:
        page.click("form[action='/console/login'] button[type=submit]")
    assert r.value.status == 429  # even the right password waits out the window
    ctx.close()


CUSTOMER_PAGES = ["", "keys", "usage", "billing", "wallet", "prices", "start"]
STAFF_PAGES = ["staff/overview", "staff", "staff/orders", "staff/refunds", "staff/codes", "staff/audit"]


def test_every_page_in_both_languages_with_screenshots(
    console: Console, browser: Browser, recorder: Recorder
) -> None:
    customer = console.user(credit="3")
    key = console.prov.create_key(customer.id, name="demo", group="x03")
    traces = call(console, str(key["secret"]), 3)
    console.prov._run(console.prov.svc.credit(customer.id, "1", kind="voucher", reason="welcome voucher"))
    support = console.user("support")
    for lang in ("en", "zh_CN"):
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            for who, pages in ((customer, [*CUSTOMER_PAGES, f"usage/{traces[0]}"]), (support, STAFF_PAGES)):
                ctx, page = new_page(browser, recorder, lang=lang, viewport=viewport)
                sign_in(page, console.url, who)
                for p in pages:
                    resp = page.goto(f"{console.url}/console/{p}")
                    assert resp is not None and resp.status == 200, (p, resp and resp.status)
                    name = (p or "dashboard").replace("/", "-")
                    if name.startswith("usage-"):
                        name = "usage-detail"
                    shot(page, f"{name}.{lang}.{width}")
                    if lang == "zh_CN":
                        text = page.locator("body").inner_text()
                        for pre in page.locator("pre").all_inner_texts():
                            text = text.replace(pre, "")
                        left = [m for m in ENGLISH_MARKERS if m in text]
                        assert not left, f"untranslated on /console/{p}: {left}"
                ctx.close()
    for lang in ("en", "zh_CN"):
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            ctx, page = new_page(browser, recorder, lang=lang, viewport=viewport)
            page.goto(f"{console.url}/console/login")
            shot(page, f"login.{lang}.{width}")
            ctx.close()
