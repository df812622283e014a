"""Top-up through the fake Stripe's hosted checkout in the browser: the live quote, a declined
card explained in plain words, then a payment whose signed webhook credits the order once and
the balance rises; and key rename and delete from the keys page."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import openai
import pytest
from playwright.sync_api import Browser

from e2e.stack import running_stack
from tollway.payments.fakes.stripe_fake import FakeStripe

from .conftest import DESKTOP, PHONE, Console, Recorder, new_page, shot, sign_in


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture(scope="module")
def paying(tmp_path_factory: pytest.TempPathFactory, stripe: FakeStripe) -> Iterator[Console]:
    """A server whose Stripe is the fake; the fake's checkout page posts its events back."""
    workdir = tmp_path_factory.mktemp("console-topup")
    env = {
        "TOLLWAY_STRIPE_SECRET_KEY": stripe.secret_key,
        "TOLLWAY_STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
        "TOLLWAY_STRIPE_API_BASE": stripe.url,
    }
    with running_stack("sqlite", f"sqlite:///{workdir / 'tollway.db'}", workdir, env) as stack:
        stripe.webhook_url = f"{stack.url}/webhooks/stripe"
        console = Console(stack)
        console.admin_api(
            "PUT",
            "/api/admin/payments/prices/USD",
            {"price_per_credit": "1.25", "presets": ["10", "25"], "enabled": True, "reason": "topup test"},
        )
        yield console


def test_top_up_through_stripe_checkout(
    paying: Console, stripe: FakeStripe, browser: Browser, recorder: Recorder
) -> None:
    customer = paying.user()
    ctx, page = new_page(browser, recorder)
    sign_in(page, paying.url, customer)
    page.goto(f"{paying.url}/console/wallet")
    assert page.locator("#available").inner_text() == "0"
    # a preset shows what it buys before paying: 25 USD at 1.25 per credit = 20 credits
    page.click("a.preset:has-text('25')")
    assert "20" in page.locator("#quote b").inner_text()
    shot(page, "wallet-quote.en.desktop")
    page.select_option("form[action='/console/wallet/topup'] select[name=provider]", "stripe")
    page.click("form[action='/console/wallet/topup'] button[type=submit]")
    pay_link = page.locator("#wallet-ok a", has_text="Pay now")
    checkout_url = pay_link.get_attribute("href")
    assert checkout_url and checkout_url.startswith(stripe.url), checkout_url
    number = page.locator("#wallet-ok a").first.inner_text()

    # the card is declined: Stripe says so, the webhook notes the reason, nothing is credited
    pay_link.click()
    assert page.locator("#amount").inner_text() == "25.00 USD"
    page.select_option("select[name=code]", "insufficient_funds")
    page.click("#decline")
    assert "insufficient funds" in page.locator("#card-error").inner_text().lower()
    page.click("#back")
    assert page.url.startswith(f"{paying.url}/console/payment/{number}")
    assert "insufficient funds" in page.locator("#payment-decline").inner_text().lower()
    assert paying.stack.balance(customer.id)["cash_nano"] == 0
    shot(page, "payment-declined.en.desktop")
    zctx, zpage = new_page(browser, recorder, lang="zh_CN")
    zpage.goto(page.url)
    assert "您的卡余额不足" in zpage.locator("#payment-decline").inner_text()  # the reason, translated
    shot(zpage, "payment-declined.zh_CN.desktop")
    zctx.close()

    # paid with another card: the webhook credits the order before the redirect lands
    page.goto(checkout_url)
    page.click("#pay")
    assert page.url.startswith(f"{paying.url}/console/payment/{number}"), page.url
    assert re.search(r"\b20 credits were added", page.locator("#payment-outcome").inner_text())
    shot(page, "payment-paid.en.desktop")
    assert ("checkout.session.completed", 200) in stripe.deliveries
    page.goto(f"{paying.url}/console/wallet")
    assert page.locator("#available").inner_text() == "20"
    assert "credited" in page.locator("tr", has_text=number).inner_text()
    assert paying.stack.balance(customer.id)["cash_nano"] == 20_000_000_000
    paying.stack.audit_ok()

    # the provider's retry of the same event and the return page again credit nothing more
    event = stripe.event("checkout.session.completed", stripe.sessions[checkout_url.rsplit("/", 1)[1]])
    body, signature = stripe.signed(event)
    request = urllib.request.Request(
        f"{paying.url}/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
    page.goto(f"{paying.url}/pay/return/{number}")
    assert paying.stack.balance(customer.id)["cash_nano"] == 20_000_000_000

    for lang in ("en", "zh_CN"):
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            lctx, lpage = new_page(browser, recorder, lang=lang, viewport=viewport)
            lpage.goto(f"{paying.url}/console/payment/{number}")
            if lang == "zh_CN":
                assert "已为您的余额增加" in lpage.inner_text("main")
            shot(lpage, f"payment-return.{lang}.{width}")
            lctx.close()
    ctx.close()


def test_rename_and_delete_a_key_in_the_browser(
    paying: Console, browser: Browser, recorder: Recorder
) -> None:
    customer = paying.user(credit="5")
    other = paying.user()
    other_key = paying.prov.create_key(other.id, name="theirs", group="x1")
    ctx, page = new_page(browser, recorder)
    sign_in(page, paying.url, customer)
    page.goto(f"{paying.url}/console/keys")
    page.fill("form[action='/console/keys'] input[name=name]", "laptop")
    page.click("form[action='/console/keys'] button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    row = page.locator("tr", has=page.locator(".key-name", has_text="laptop"))
    row.locator("details.rename summary").click()
    row.locator("input[name=name]").fill("build server")
    row.locator("details.rename button").click()
    assert page.locator(".key-name", has_text="build server").count() == 1
    assert page.locator(".key-name", has_text="laptop").count() == 0
    with paying.stack.client(secret) as client:
        client.models.list()  # the renamed key still works

    page.on("dialog", lambda d: d.accept())
    row = page.locator("tr", has=page.locator(".key-name", has_text="build server"))
    row.locator("form[action$='/delete'] button").click()
    page.wait_for_load_state()
    assert page.locator(".key-name", has_text="build server").count() == 0
    with paying.stack.client(secret) as client, pytest.raises(openai.AuthenticationError):
        client.models.list()
    # another account's key: 404 and unchanged
    csrf = page.context.cookies()
    token = next(c["value"] for c in csrf if c["name"] == "tw_csrf")
    resp = page.request.post(f"{paying.url}/console/keys/{other_key['id']}/delete", form={"csrf": token})
    assert resp.status == 404
    assert paying.admin_api("GET", f"/api/admin/keys/{other_key['id']}")["status"] == "enabled"
    ctx.close()
