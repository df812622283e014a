"""The console application, mounted by the control plane at ``/console``: sign-in, sign-out,
the language switch, static assets and the error pages; the pages live in
:mod:`.customer` and :mod:`.staff`."""

from __future__ import annotations

import asyncio
import secrets

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from tollway.accounts.model import AccountStatus
from tollway.api.deps import ControlDeps
from tollway.api.sessions import account_by_email, create_session, delete_session
from tollway.console.customer import customer_routes
from tollway.console.staff import staff_routes
from tollway.console.web import CSRF_COOKIE, HERE, LANG_COOKIE, LOCALES, SESSION_COOKIE, NotSignedIn, Web
from tollway.errors import NotFound, TollwayError
from tollway.payments.context import PaymentsContext
from tollway.services.passwords import hash_password, verify_password


def build_console(deps: ControlDeps, ctx: PaymentsContext | None = None) -> FastAPI:
    ctx = ctx or PaymentsContext.build(deps.engine, deps.box, deps.settings, on_change=deps.changed)
    web = Web(deps)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    router = APIRouter()
    auth_routes(router, web)
    customer_routes(router, web, ctx)
    staff_routes(router, web, ctx)
    app.include_router(router)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return web.redirect("/console/login")

    @app.exception_handler(PermissionError)
    async def csrf_failed(request: Request, exc: PermissionError) -> Response:
        return web.render(request, "error.html", status=403, code=403, me=None)

    @app.exception_handler(TollwayError)
    async def failed(request: Request, exc: TollwayError) -> Response:
        status = 404 if isinstance(exc, NotFound) else exc.status
        return web.render(request, "error.html", status=status, code=status, me=None, detail=str(exc))

    return app


def auth_routes(router: APIRouter, web: Web) -> None:
    deps = web.deps
    decoy: list[str] = []

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return web.render(request, "login.html", me=None, error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await web.form(request)
        email = form.get("email", "").strip().lower()
        ip = request.client.host if request.client else "?"
        keys = (f"email:{email}", f"ip:{ip}")
        if web.throttle.blocked(*keys):
            return web.render(request, "login.html", status=429, me=None, error="throttled")
        async with deps.engine.connect() as conn:
            row = await account_by_email(conn, email)
        password = form.get("password", "")
        if row is None or not row.password_hash:
            if not decoy:
                decoy.append(await asyncio.to_thread(hash_password, secrets.token_hex(8)))
            await asyncio.to_thread(verify_password, decoy[0], password)
            ok = False
        else:
            ok = await asyncio.to_thread(verify_password, row.password_hash, password)
        if not ok or row is None:
            web.throttle.fail(*keys)
            return web.render(request, "login.html", status=401, me=None, error="wrong")
        if row.status != AccountStatus.ACTIVE.value:
            return web.render(request, "login.html", status=403, me=None, error="suspended")
        web.throttle.clear(*keys)
        async with deps.engine.begin() as conn:
            token, _ = await create_session(conn, row.id, ttl_s=deps.settings.session_ttl_s)
        resp = web.redirect("/console/staff" if row.role in ("admin", "support") else "/console/")
        web.set_cookie(request, resp, SESSION_COOKIE, token, int(deps.settings.session_ttl_s))
        web.set_cookie(request, resp, CSRF_COOKIE, secrets.token_urlsafe(24), 86400 * 30)  # fresh per session
        return resp

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await web.form(request)
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            async with deps.engine.begin() as conn:
                await delete_session(conn, token)
        resp = web.redirect("/console/login")
        resp.delete_cookie(SESSION_COOKIE, path="/")
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
