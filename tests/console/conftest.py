"""Console browser tests: one Tollway server and fake upstream (the e2e stack, on SQLite) per
module, Debian's Chromium driven by Playwright (no browser download), and helpers that
provision accounts with passwords through the control API.

Every request the browser makes is recorded; ``page`` fails the test if any went anywhere but
the server on 127.0.0.1 (DESIGN.md §9: nothing from outside)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from e2e.provision import ServiceProvisioner
from e2e.stack import Stack, http_json, running_stack

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


class Console:
    """The running stack plus console-specific provisioning."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.url
        prov = stack.p
        assert isinstance(prov, ServiceProvisioner), "the console suite provisions through AdminService"
        self.prov = prov
        self.admin = self.user("admin")
        self.admin_token = self.api_login(self.admin.email)

    def user(self, role: str = "customer", credit: str | None = None) -> User:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
        doc = self.prov._run(self.prov.svc.create_account(email, password=PASSWORD, role=role))
        if credit is not None:
            self.prov.credit(doc["id"], credit)
        return User(doc["id"], email, role)

    def api_login(self, email: str) -> str:
        status, _, doc = http_json(
            "POST", f"{self.url}/api/auth/login", {"email": email, "password": PASSWORD}
        )
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
    page.goto(f"{base}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_load_state()
    assert not page.url.endswith("/console/login"), page.inner_text("main")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
