"""The Security page: two-factor authentication for the signed-in account. Customers may turn
it on (scan the QR code or type the key, confirm with a code) and off (password and a code);
staff always have it on (they enrolled at their first sign-in)."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.console.auth_pages import client_ip
from tollway.console.web import Viewer, Web
from tollway.errors import AuthenticationFailed, Conflict, InvalidRequest
from tollway.services.totp import TotpService, WrongTotpCode, provisioning_uri, qr_svg

HOME = "/console/security"


def security_routes(router: APIRouter, web: Web) -> None:
    deps = web.deps

    def totp(v: Viewer) -> TotpService:
        return TotpService(deps.engine, deps.box, actor=v.actor)

    async def page(request: Request, v: Viewer, status: int = 200, error: str | None = None) -> Response:
        state = await totp(v).status(v.account_id)
        secret = state.pending_secret
        qr = qr_svg(provisioning_uri(secret, v.email)) if secret else None
        notice = request.query_params.get("notice", "")
        ctx = {"enabled": state.enabled, "secret": secret, "qr": qr, "error": error, "notice": notice}
        return web.render(request, "security.html", status=status, me=v, action=f"{HOME}/totp/confirm", **ctx)

    @router.get("/security")
    async def security(request: Request) -> Response:
        return await page(request, await web.viewer(request))

    @router.post("/security/totp/begin")
    async def begin(request: Request) -> Response:
        await web.form(request)
        v = await web.viewer(request)
        with contextlib.suppress(Conflict):  # already on: the page says so
            await totp(v).begin(v.account_id)
        return web.redirect(HOME)

    @router.post("/security/totp/cancel")
    async def cancel(request: Request) -> Response:
        await web.form(request)
        v = await web.viewer(request)
        await totp(v).cancel_enrollment(v.account_id)
        return web.redirect(HOME)

    @router.post("/security/totp/confirm")
    async def confirm(request: Request) -> Response:
        form = await web.form(request)
        v = await web.viewer(request)
        keys = (f"totp:{v.account_id}", f"ip:{client_ip(request)}")
        if await web.throttle.blocked(*keys):
            return await page(request, v, 429, "throttled")
        try:
            await totp(v).confirm(v.account_id, form.get("code", ""))
        except WrongTotpCode:
            await web.throttle.fail(*keys)
            return await page(request, v, 400, "wrong")
        except Conflict:
            return web.redirect(HOME)
        return web.redirect(f"{HOME}?notice=on")

    @router.post("/security/totp/disable")
    async def disable(request: Request) -> Response:
        form = await web.form(request)
        v = await web.viewer(request)
        keys = (f"totp:{v.account_id}", f"ip:{client_ip(request)}")
        if await web.throttle.blocked(*keys):
            return await page(request, v, 429, "throttled")
        try:
            await totp(v).disable(v.account_id, password=form.get("password", ""), code=form.get("code", ""))
        except WrongTotpCode:
            await web.throttle.fail(*keys)
            return await page(request, v, 400, "wrong")
        except AuthenticationFailed:
            await web.throttle.fail(*keys)
            return await page(request, v, 400, "password")
        except (Conflict, InvalidRequest):  # not on, or staff (who must keep it)
            return await page(request, v, 400)
        return web.redirect(f"{HOME}?notice=off")
