"""Console browser tests: one Tollway server and fake upstream (the e2e stack, on SQLite) per
module, Debian's Chromium driven by Playwright (no browser download), and helpers that
provision accounts with passwords through the control API.

Every request the browser makes is recorded; ``page`` fails the test if any went anywhere but
the server on 127.0.0.1 (DESIGN.md §9: nothing from outside)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from e2e.provision import ServiceProvisioner
from e2e.stack import Stack, http_json, running_stack
from tollway.services.totp import STEP_S, TotpService, code_for_step, current_step

CHROMIUM = os.environ.get("TOLLWAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class User:
    id: str
    email: str
    role: str
    totp_secret: str | None = None  # set once two-factor is enrolled (staff always)
    totp_last_step: int | None = None  # the last time step whose code was used (each works once)
    # The staff session of the last full sign-in: reused by ``sign_in`` while the server still
    # takes it, because a fresh sign-in needs an unused TOTP step (up to 30 s of waiting).
    session_cookies: list[Any] = field(default_factory=list)

    def next_code(self) -> str:
        """A code the server will take: the current step's, or — once that was used — the next
        step's (inside the ±1 step drift window, as from a phone whose clock runs a little
        ahead); when both were used, wait for a fresh step."""
        assert self.totp_secret, f"{self.email} has no two-factor"
        while True:
            now = current_step()
            step = now if self.totp_last_step is None else max(now, self.totp_last_step + 1)
            if step <= now + 1:
                break
            time.sleep(STEP_S - time.time() % STEP_S + 0.05)
        self.totp_last_step = step
        return code_for_step(self.totp_secret, step)


class Console:
    """The running stack plus console-specific provisioning."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.url
        prov = stack.p
        assert isinstance(prov, ServiceProvisioner), "the console suite provisions through AdminService"
        self.prov = prov
        self.admin = self.user("admin")
        self.admin_token = self.api_login(self.admin)

    def user(self, role: str = "customer", credit: str | None = None) -> User:
        """A new account with :data:`PASSWORD`; staff get two-factor enrolled (they must have it)."""
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
        doc = self.prov._run(self.prov.svc.create_account(email, password=PASSWORD, role=role))
        if credit is not None:
            self.prov.credit(doc["id"], credit)
        user = User(doc["id"], email, role)
        if role in ("support", "admin"):
            self.enroll_totp(user)
        return user

    def enroll_totp(self, user: User) -> None:
        """Two-factor on, through the service (as the Security page does), the secret kept."""
        totp = TotpService(self.prov.engine, self.prov.svc.box, actor="e2e")
        user.totp_secret = self.prov._run(totp.begin(user.id))
        self.prov._run(totp.confirm(user.id, user.next_code()))

    def api_login(self, who: User | str) -> str:
        body = {"email": who.email if isinstance(who, User) else who, "password": PASSWORD}
        if isinstance(who, User) and who.totp_secret:
            body["totp"] = who.next_code()
        status, _, doc = http_json("POST", f"{self.url}/api/auth/login", body)
        assert status == 200, doc
        return str(doc["token"])

    def admin_api(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"authorization": f"Bearer {self.admin_token}"}
        status, _, doc = http_json(method, f"{self.url}{path}", body, headers)
        assert status < 300, (status, doc)
        return doc


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    workdir = tmp_path_factory.mktemp("console")
    with running_stack("sqlite", f"sqlite:///{workdir / 'tollway.db'}", workdir) as stack:
        yield Console(stack)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Recorder:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def outside(self) -> list[str]:
        return [u for u in self.urls if urlsplit(u).hostname != "127.0.0.1" and not u.startswith("data:")]


def new_page(
    browser: Browser, rec: Recorder, *, lang: str = "en", viewport: dict[str, int] | None = None
) -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(
        viewport=viewport or DESKTOP, locale="zh-CN" if lang == "zh_CN" else "en-US", accept_downloads=True
    )
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    page.on("request", lambda r: rec.urls.append(r.url))
    return ctx, page


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    assert not rec.outside(), f"requests left the server: {rec.outside()}"


def sign_in(page: Page, base: str, who: User | str) -> None:
    """Sign in through the form. Pass the ``User`` (staff need it: their two-factor secret)."""
    email = who.email if isinstance(who, User) else who
    staff = isinstance(who, User) and who.totp_secret is not None
    if isinstance(who, User) and who.session_cookies:
        page.context.add_cookies(who.session_cookies)
        page.goto(f"{base}/console/staff/overview")
        if "/console/login" not in page.url:
            return
    page.goto(f"{base}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_load_state()
    if isinstance(who, User) and who.totp_secret:
        assert page.url.endswith("/console/login/code"), page.url
        page.fill("input[name=code]", who.next_code())
        page.click("form[action='/console/login/code'] button[type=submit]")
        page.wait_for_load_state()
    assert "/console/login" not in page.url, page.inner_text("main")
    if staff and isinstance(who, User):
        names = ("tw_session", "tw_csrf")
        who.session_cookies = [c for c in page.context.cookies() if c["name"] in names]


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
