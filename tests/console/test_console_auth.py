"""Console accounts in a real Chromium: sign-up and the operator's switch, password reset by the
emailed link (read from the outbox), two-factor for customers (Security page, two-step sign-in,
turning it off) and staff (enrollment before any staff page), throttled codes, and every new page
in English and zh-CN at desktop and phone width (screenshots into docs/screenshots/)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pyotp
from playwright.sync_api import Browser, BrowserContext, Page

from tollway.services.mail import Outbox
from tollway.services.operator_settings import SIGNUP_ENABLED, OperatorSettings
from tollway.services.password_reset import PasswordResets
from tollway.services.signin import account_by_email
from tollway.services.totp import STEP_S, current_step

from .conftest import DESKTOP, PASSWORD, PHONE, Console, Recorder, User, new_page, shot, sign_in

NEW_PASSWORD = "a-completely-new-password"
ENGLISH_MARKERS = [
    "Create an account",
    "Password again",
    "Reset your password",
    "Send the link",
    "Set a new password",
    "Forgot your password",
    "Two-factor",
    "Security",
    "Scan this QR code",
    "Confirm",
    "Verify",
    "Back to sign-in",
    "Staff accounts",
]


def set_signup(console: Console, enabled: bool) -> None:
    ops = OperatorSettings(console.prov.engine, {SIGNUP_ENABLED: True})
    console.prov._run(ops.set_signup_enabled(enabled, actor="test", reason="console test"))


def account_exists(console: Console, email: str) -> bool:
    async def look() -> Any:
        async with console.prov.engine.connect() as conn:
            return await account_by_email(conn, email)

    return console.prov._run(look()) is not None


def reset_link(console: Console, email: str) -> str:
    mail = next(m for m in console.prov._run(Outbox(console.prov.engine).list()) if m["to"] == email)
    body = console.prov._run(Outbox(console.prov.engine).get(mail["id"]))["body"]
    m = re.search(r"http://127\.0\.0\.1:\d+/console/reset/[A-Za-z0-9_-]+", body)
    assert m, body
    return m.group(0)


def csrf_of(ctx: BrowserContext) -> str:
    return next(c["value"] for c in ctx.cookies() if c["name"] == "tw_csrf")


def wrong_code(user: User) -> str:
    """A code that is not right for any step near now."""
    right = {pyotp.TOTP(user.totp_secret or "").at((current_step() + o) * STEP_S) for o in range(-2, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in right)


def has_session(ctx: BrowserContext) -> bool:
    return any(c["name"] == "tw_session" for c in ctx.cookies())


def submit(page: Page, action: str) -> None:
    page.click(f"form[action='{action}'] button[type=submit]")
    page.wait_for_load_state()


def test_signup_lands_on_the_dashboard_and_the_switch_closes_it(
    console: Console, browser: Browser, recorder: Recorder
) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.test"
    ctx, page = new_page(browser, recorder)
    page.goto(f"{console.url}/console/login")
    page.click("#signup-link")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", "something else")
    submit(page, "/console/signup")
    assert page.locator(".error").count() == 1 and not account_exists(console, email)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    submit(page, "/console/signup")
    assert page.url.endswith("/console/"), page.inner_text("main")
    assert page.locator("#available").count() == 1 and has_session(ctx)
    ctx.close()

    set_signup(console, False)
    try:
        ctx, page = new_page(browser, recorder)
        page.goto(f"{console.url}/console/login")
        assert page.locator("#signup-link").count() == 0 and page.locator("#forgot-link").count() == 1
        page.goto(f"{console.url}/console/signup")
        assert page.locator("#signup-closed").count() == 1
        assert page.locator("form[action='/console/signup']").count() == 0
        closed = f"closed-{uuid.uuid4().hex[:8]}@example.test"
        form = {"csrf": csrf_of(ctx), "email": closed, "password": PASSWORD, "confirm": PASSWORD}
        resp = page.request.post(f"{console.url}/console/signup", form=form, max_redirects=0)
        assert resp.status == 403 and not account_exists(console, closed)
        ctx.close()
    finally:
        set_signup(console, True)


def test_password_reset_by_the_emailed_link(console: Console, browser: Browser, recorder: Recorder) -> None:
    user = console.user()
    signed_in, old_page = new_page(browser, recorder)
    sign_in(old_page, console.url, user)

    ctx, page = new_page(browser, recorder)
    answers = []
    for email in (user.email, f"nobody-{uuid.uuid4().hex[:6]}@example.test"):
        page.goto(f"{console.url}/console/login")
        page.click("#forgot-link")
        page.fill("input[name=email]", email)
        submit(page, "/console/forgot")
        answers.append(page.inner_text("#forgot-sent"))
    assert answers[0] == answers[1]  # the same answer: no account enumeration

    link = reset_link(console, user.email)
    page.goto(link)
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=confirm]", NEW_PASSWORD + "x")
    submit(page, link.removeprefix(console.url))
    assert page.locator(".error").count() == 1
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=confirm]", NEW_PASSWORD)
    submit(page, link.removeprefix(console.url))
    assert page.url.endswith("/console/login?notice=reset") and page.locator("#login-notice").count() == 1

    # every old session ended; the new password works, the old one does not
    old_page.goto(f"{console.url}/console/keys")
    assert old_page.url.endswith("/console/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    submit(page, "/console/login")
    assert page.locator(".error").count() == 1
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", NEW_PASSWORD)
    submit(page, "/console/login")
    assert page.url.endswith("/console/"), page.inner_text("main")

    # the link worked once
    page.goto(link)
    assert page.locator("#reset-invalid").count() == 1
    resp = page.request.post(
        link, form={"csrf": csrf_of(ctx), "password": "yet another one", "confirm": "yet another one"}
    )
    assert resp.status == 400
    ctx.close()
    signed_in.close()


def test_customer_two_factor_two_step_sign_in(console: Console, browser: Browser, recorder: Recorder) -> None:
    user = console.user()
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, user)
    page.goto(f"{console.url}/console/security")
    assert page.locator("#totp-state").get_attribute("data-state") == "off"
    submit(page, "/console/security/totp/begin")
    assert page.locator("#totp-qr svg").count() == 1
    user.totp_secret = page.inner_text("#totp-secret").strip()
    page.fill("input[name=code]", wrong_code(user))
    submit(page, "/console/security/totp/confirm")
    assert page.locator("#security-error").count() == 1
    page.fill("input[name=code]", user.next_code())
    submit(page, "/console/security/totp/confirm")
    assert page.locator("#totp-state").get_attribute("data-state") == "on", page.inner_text("main")
    submit(page, "/console/logout")

    # sign-in is two steps, and no session exists between them
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    submit(page, "/console/login")
    assert page.url.endswith("/console/login/code") and not has_session(ctx)
    assert page.goto(f"{console.url}/console/keys").url.endswith("/console/login")  # type: ignore[union-attr]
    page.goto(f"{console.url}/console/login/code")
    used = pyotp.TOTP(user.totp_secret).at(int(user.totp_last_step or 0) * STEP_S)
    page.fill("input[name=code]", used)  # the code that confirmed enrollment: used already
    submit(page, "/console/login/code")
    assert page.locator(".error").count() == 1 and not has_session(ctx)
    page.fill("input[name=code]", user.next_code())
    submit(page, "/console/login/code")
    assert page.url.endswith("/console/") and has_session(ctx)

    # off again, with the password and a code
    page.goto(f"{console.url}/console/security")
    page.fill("input[name=password]", "wrong password")
    page.fill("input[name=code]", user.next_code())
    submit(page, "/console/security/totp/disable")
    assert page.locator("#security-error").count() == 1
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", user.next_code())
    submit(page, "/console/security/totp/disable")
    assert page.locator("#totp-state").get_attribute("data-state") == "off", page.inner_text("main")
    ctx.close()


def test_staff_enroll_before_any_staff_page(console: Console, browser: Browser, recorder: Recorder) -> None:
    email = f"support-{uuid.uuid4().hex[:8]}@example.test"
    doc = console.prov._run(console.prov.svc.create_account(email, password=PASSWORD, role="support"))
    staff = User(doc["id"], email, "support")
    ctx, page = new_page(browser, recorder)
    page.goto(f"{console.url}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    submit(page, "/console/login")
    assert page.url.endswith("/console/login/enroll") and not has_session(ctx)
    for path in ("/console/staff", "/console/staff/orders", "/console/security"):
        page.goto(f"{console.url}{path}")
        assert page.url.endswith("/console/login"), path
    page.goto(f"{console.url}/console/login/enroll")
    assert page.locator("#totp-qr svg").count() == 1
    staff.totp_secret = page.inner_text("#totp-secret").strip()
    page.fill("input[name=code]", staff.next_code())
    submit(page, "/console/login/enroll")
    assert "/console/staff" in page.url and has_session(ctx), page.inner_text("main")
    page.goto(f"{console.url}/console/security")
    assert page.locator("#totp-state").get_attribute("data-state") == "on"
    assert page.locator("form[action='/console/security/totp/disable']").count() == 0  # staff keep it
    ctx.close()
    assert console.api_login(staff).startswith("tws_")  # the API takes the code as `totp`


def test_wrong_codes_are_throttled(console: Console, browser: Browser, recorder: Recorder) -> None:
    user = console.user()
    console.enroll_totp(user)
    ctx, page = new_page(browser, recorder)
    page.goto(f"{console.url}/console/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    submit(page, "/console/login")
    wrong = wrong_code(user)
    for _ in range(5):
        page.fill("input[name=code]", wrong)
        submit(page, "/console/login/code")
        assert page.locator(".error").count() == 1
    page.fill("input[name=code]", user.next_code())
    with page.expect_response(re.compile(r"/console/login/code$")) as r:
        page.click("form[action='/console/login/code'] button[type=submit]")
    assert r.value.status == 429 and not has_session(ctx)
    ctx.close()


def _check_chinese(page: Page, name: str) -> None:
    text = page.locator("main").inner_text()
    left = [m for m in ENGLISH_MARKERS if m in text]
    assert not left, f"untranslated on {name}: {left}"


def test_new_pages_in_both_languages_with_screenshots(
    console: Console, browser: Browser, recorder: Recorder
) -> None:
    for lang in ("en", "zh_CN"):
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            ctx, page = new_page(browser, recorder, lang=lang, viewport=viewport)
            user = console.user()
            token_link = reset_link_for(console, user)
            pages = [("signup", "/console/signup"), ("forgot", "/console/forgot"), ("reset", token_link)]
            for name, path in pages:
                page.goto(f"{console.url}{path}")
                assert page.locator("form input[name=csrf]").count() == 1, name
                shot(page, f"{name}.{lang}.{width}")
                if lang == "zh_CN":
                    _check_chinese(page, name)
            sign_in(page, console.url, user)
            page.goto(f"{console.url}/console/security")
            page.click("form[action='/console/security/totp/begin'] button")
            page.wait_for_load_state()
            shot(page, f"security.{lang}.{width}")
            if lang == "zh_CN":
                _check_chinese(page, "security")
            user.totp_secret = page.inner_text("#totp-secret").strip()
            page.fill("input[name=code]", user.next_code())
            submit(page, "/console/security/totp/confirm")
            submit(page, "/console/logout")
            page.fill("input[name=email]", user.email)
            page.fill("input[name=password]", PASSWORD)
            submit(page, "/console/login")
            shot(page, f"totp-code.{lang}.{width}")
            if lang == "zh_CN":
                _check_chinese(page, "totp-code")
            ctx.close()

            ctx, page = new_page(browser, recorder, lang=lang, viewport=viewport)
            email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
            console.prov._run(console.prov.svc.create_account(email, password=PASSWORD, role="admin"))
            page.goto(f"{console.url}/console/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            submit(page, "/console/login")
            assert page.url.endswith("/console/login/enroll")
            shot(page, f"totp-enroll.{lang}.{width}")
            if lang == "zh_CN":
                _check_chinese(page, "totp-enroll")
            ctx.close()


def reset_link_for(console: Console, user: User) -> str:
    """A live reset link's path, made through the service (the mail is not needed here)."""
    found: list[str] = []

    def compose(link: str, minutes: int) -> tuple[str, str]:
        found.append(link)
        return "reset", link

    resets = PasswordResets(console.prov.engine, ttl_s=3600)
    assert console.prov._run(resets.request(user.email, base_url="", compose=compose))
    return found[0]
