"""The console's plumbing: templates, translations, the session cookie, CSRF and throttling.

Sessions reuse :mod:`tollway.api.sessions` (the same tokens as ``/api/auth/login``), carried in
an HttpOnly SameSite=Strict cookie. Every form carries a CSRF token that must equal the
``tw_csrf`` cookie (double submit) — SameSite=Strict already stops cross-site posts, the token
is the second lock. Cookies are ``Secure`` whenever the console is reached over HTTPS (or
``TOLLWAY_PUBLIC_BASE_URL`` is https).
"""

from __future__ import annotations

import gettext
import hmac
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tollway.accounts.model import AccountStatus, Role
from tollway.api.deps import ControlDeps
from tollway.api.sessions import session_account
from tollway.money import nano_to_credits
from tollway.payments.stripe.declines import DECLINES
from tollway.payments.stripe.declines import GENERIC as DECLINE_GENERIC
from tollway.payments.stripe.provider import ASYNC_FAILED
from tollway.payments.views import DESTINATIONS
from tollway.services.totp import totp_confirmed

HERE = Path(__file__).parent
LOCALES = {"en": "English", "zh_CN": "简体中文"}
SESSION_COOKIE = "tw_session"
CSRF_COOKIE = "tw_csrf"
LANG_COOKIE = "tw_lang"


# Sentences the payment code stores or returns in English: decline reasons and refund destinations.
PROVIDER_REASONS = frozenset([*DECLINES.values(), DECLINE_GENERIC, ASYNC_FAILED, *DESTINATIONS.values()])

# Status words stored in the database, shown translated (the catalogue build adds them).
STATE_WORDS = (
    "enabled",
    "disabled",
    "revoked",
    "deleted",
    "active",
    "suspended",
    "ok",
    "error",
    "created",
    "pending",
    "paid",
    "credited",
    "failed",
    "expired",
    "partially_refunded",
    "refunded",
    "succeeded",
    "requested",
    "processing",
    "completed",
    "rejected",
    "cash",
    "voucher",
    "closed",  # breaker states (the channels page)
    "open",
    "half_open",
)


def _translations() -> dict[str, gettext.NullTranslations]:
    out: dict[str, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
    out["zh_CN"] = gettext.translation("messages", HERE / "i18n", languages=["zh_CN"], fallback=False)
    return out


def credits(nano: int | None) -> str:
    return "—" if nano is None else nano_to_credits(int(nano))


def times(price: str, multiplier: str) -> str:
    """An effective price: an official decimal price times a group multiplier, exactly."""
    return format(Decimal(str(price)) * Decimal(str(multiplier)), "f").rstrip("0").rstrip(".") or "0"


def make_env(lang: str, translations: dict[str, gettext.NullTranslations]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations[lang], newstyle=True)  # type: ignore[attr-defined]
    env.filters["credits"] = credits
    env.filters["times"] = times
    tr = translations[lang]
    env.filters["state"] = lambda w: tr.gettext(w) if w in STATE_WORDS else (w or "")
    # Provider decline reasons are stored in English (payments.stripe.declines); shown translated.
    env.filters["reason"] = lambda w: tr.gettext(w) if w in PROVIDER_REASONS else (w or "")
    env.filters["day"] = lambda s: (s or "")[:10]
    env.filters["when"] = lambda s: (s or "")[:19].replace("T", " ")
    return env


@dataclass(frozen=True, slots=True)
class Viewer:
    account_id: str
    email: str
    role: Role
    token: str

    @property
    def actor(self) -> str:
        return f"account:{self.account_id}"

    @property
    def staff(self) -> bool:
        return self.role in (Role.ADMIN, Role.SUPPORT)


class NotSignedIn(Exception):
    pass


class Web:
    def __init__(self, deps: ControlDeps) -> None:
        self.deps = deps
        tr = _translations()
        self.envs = {lang: make_env(lang, tr) for lang in LOCALES}
        self.throttle = deps.throttles.login  # the API's sign-in shares it: one budget

    # --- request helpers ---------------------------------------------------------------------

    def lang(self, request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "")
        if lang in LOCALES:
            return lang
        accept = request.headers.get("accept-language", "").lower()
        return "zh_CN" if accept.startswith("zh") else "en"

    def secure(self, request: Request) -> bool:
        base = self.deps.settings.public_base_url or ""
        return request.url.scheme == "https" or base.startswith("https://")

    def set_cookie(self, request: Request, resp: Response, name: str, value: str, max_age: int) -> None:
        resp.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
            path="/",
        )

    async def viewer(self, request: Request) -> Viewer:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise NotSignedIn
        async with self.deps.engine.connect() as conn:
            row = await session_account(conn, token)
            # staff sessions exist only after two-factor; this also covers a reset since then
            staff_without_totp = (
                row is not None and row.role != Role.CUSTOMER.value and not await totp_confirmed(conn, row.id)
            )
        if row is None or row.status != AccountStatus.ACTIVE.value or staff_without_totp:
            raise NotSignedIn
        return Viewer(row.id, row.email, Role(row.role), token)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form, after the CSRF check (a failed check raises ``PermissionError``)."""
        raw = (await request.body()).decode("utf-8", "replace")
        data = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, data.get("csrf", "")):
            raise PermissionError("csrf")
        return data

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = self.lang(request)
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        html = (
            self.envs[lang]
            .get_template(name)
            .render(
                lang=lang,
                locales=LOCALES,
                csrf=csrf,
                path=request.url.path,
                query=request.url.query,
                **ctx,
            )
        )
        resp = HTMLResponse(html, status_code=status)
        # CSP, nosniff, referrer policy: on every response, by TollwayApp (tollway.security.headers)
        if CSRF_COOKIE not in request.cookies:
            self.set_cookie(request, resp, CSRF_COOKIE, csrf, 86400 * 30)
        return resp

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def gettext(self, request: Request, message: str) -> str:
        env = self.envs[self.lang(request)]
        return str(env.globals["gettext"](message))  # type: ignore[operator]
