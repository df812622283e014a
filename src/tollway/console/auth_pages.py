"""Signing in and out of the console: the password, then the two-factor code when it is on
(or, for staff without it, enrollment first), sign-out and the language switch.

No session exists until every step has passed: between the password and the code the browser
holds only the sealed pending sign-in of :mod:`tollway.services.signin` (``tw_pending``), which
opens nothing but the code or enrollment form. Wrong passwords and wrong codes both count
towards the sign-in throttle (per email or account, and per client address).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.api.sessions import create_session, delete_session
from tollway.console.web import CSRF_COOKIE, LANG_COOKIE, LOCALES, SESSION_COOKIE, Web
from tollway.errors import NotFound, TollwayError
from tollway.services.operator_settings import SIGNUP_ENABLED, OperatorSettings
from tollway.services.signin import AccountSuspended, InvalidCredentials, NextStep, SignIn
from tollway.services.totp import provisioning_uri, qr_svg

PENDING_COOKIE = "tw_pending"
STAFF_HOME = "/console/staff/overview"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def operator_settings(web: Web) -> OperatorSettings:
    return OperatorSettings(web.deps.engine, {SIGNUP_ENABLED: web.deps.settings.signup_enabled})


async def start_session(web: Web, request: Request, account_id: str, role: str) -> Response:
    """The real session: the cookie, a fresh CSRF token, off to the account's home page."""
    async with web.deps.engine.begin() as conn:
        token, _ = await create_session(conn, account_id, ttl_s=web.deps.settings.session_ttl_s)
    resp = web.redirect(STAFF_HOME if role in ("admin", "support") else "/console/")
    web.set_cookie(request, resp, SESSION_COOKIE, token, int(web.deps.settings.session_ttl_s))
    web.set_cookie(request, resp, CSRF_COOKIE, secrets.token_urlsafe(24), 86400 * 30)  # fresh per session
    resp.delete_cookie(PENDING_COOKIE, path="/")
    return resp


def auth_routes(router: APIRouter, web: Web) -> None:
    deps = web.deps
    signin = SignIn(deps.engine, deps.box, deps.settings)

    async def login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
        signup_open = await operator_settings(web).signup_enabled()
        notice = request.query_params.get("notice", "")
        return web.render(
            request, "login.html", status=status, me=None, error=error, signup_open=signup_open, notice=notice
        )

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return await login_page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await web.form(request)
        email = form.get("email", "").strip().lower()
        keys = (f"email:{email}", f"ip:{client_ip(request)}")
        if await web.throttle.blocked(*keys):
            return await login_page(request, 429, "throttled")
        try:
            row = await signin.check_password(email, form.get("password", ""))
        except InvalidCredentials:
            await web.throttle.fail(*keys)
            return await login_page(request, 401, "wrong")
        except AccountSuspended:
            return await login_page(request, 403, "suspended")
        step = await signin.next_step(row)
        if step is None:
            await web.throttle.clear(keys[0])  # the email's count; never the address's
            return await start_session(web, request, row.id, row.role)
        if step is NextStep.ENROLL:
            await signin.totp.begin(row.id)
        resp = web.redirect(f"/console/login/{step.value}")
        pending = signin.seal_pending(row, step)
        web.set_cookie(request, resp, PENDING_COOKIE, pending, int(deps.settings.pending_signin_ttl_s))
        return resp

    async def pending(request: Request, step: NextStep) -> Any:
        return await signin.open_pending(request.cookies.get(PENDING_COOKIE, ""), step)

    async def code_page(
        request: Request, step: NextStep, row: Any, status: int = 200, **ctx: Any
    ) -> Response:
        if step is NextStep.ENROLL:
            status_now = await signin.totp.status(row.id)
            if status_now.enabled:  # enrolled meanwhile (another tab): sign in with a code
                return web.redirect("/console/login")
            secret = status_now.pending_secret or await signin.totp.begin(row.id)
            ctx["secret"] = secret
            ctx["qr"] = qr_svg(provisioning_uri(secret, row.email))
        template = "totp_enroll.html" if step is NextStep.ENROLL else "totp_code.html"
        return web.render(
            request, template, status=status, me=None, action=f"/console/login/{step.value}", **ctx
        )

    @router.get("/login/{step}")
    async def code_form(request: Request, step: str) -> Response:
        which = _step(step)
        row = await pending(request, which)
        if row is None:
            return web.redirect("/console/login")
        return await code_page(request, which, row, error=None)

    @router.post("/login/{step}")
    async def code_submit(request: Request, step: str) -> Response:
        which = _step(step)
        form = await web.form(request)
        row = await pending(request, which)
        if row is None:
            return web.redirect("/console/login")
        keys = (f"totp:{row.id}", f"ip:{client_ip(request)}")
        if await web.throttle.blocked(*keys):
            return await code_page(request, which, row, 429, error="throttled")
        code = form.get("code", "")
        if which is NextStep.ENROLL:
            try:
                await signin.totp.confirm(row.id, code)
                ok = True
            except TollwayError:
                ok = False
        else:
            ok = await signin.totp.verify(row.id, code)
        if not ok:
            await web.throttle.fail(*keys)
            return await code_page(request, which, row, 401, error="wrong")
        await web.throttle.clear(keys[0], f"email:{row.email}")  # not the address's count
        return await start_session(web, request, row.id, row.role)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await web.form(request)
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            async with deps.engine.begin() as conn:
                await delete_session(conn, token)
        resp = web.redirect("/console/login")
        resp.delete_cookie(SESSION_COOKIE, path="/")
        resp.delete_cookie(PENDING_COOKIE, path="/")
        return resp

    @router.get("/lang/{lang}")
    async def set_lang(request: Request, lang: str) -> Response:
        if lang not in LOCALES:
            raise NotFound("language")
        back = request.headers.get("referer", "")
        host = f"{request.url.scheme}://{request.url.netloc}/"
        resp = web.redirect(back if back.startswith(host) else "/console/")
        web.set_cookie(request, resp, LANG_COOKIE, lang, 86400 * 365)
        return resp


def _step(step: str) -> NextStep:
    try:
        return NextStep(step)
    except ValueError as exc:
        raise NotFound("no such sign-in step") from exc
