"""The console application, mounted by the control plane at ``/console``: static assets and
the error pages; the pages live in :mod:`.auth_pages` (sign-in, sign-out, language),
:mod:`.account_pages` (sign-up, password reset), :mod:`.security_pages` (two-factor),
:mod:`.customer` and :mod:`.staff`."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from tollway.api.deps import ControlDeps
from tollway.console.account_pages import account_routes
from tollway.console.auth_pages import auth_routes
from tollway.console.customer import customer_routes
from tollway.console.customer_money import customer_money_routes
from tollway.console.payment_return import payment_return_routes
from tollway.console.security_pages import security_routes
from tollway.console.staff import staff_routes
from tollway.console.staff_catalog import catalog_routes
from tollway.console.staff_channels import channel_routes
from tollway.console.staff_overview import overview_routes
from tollway.console.staff_settings import settings_routes
from tollway.console.web import HERE, NotSignedIn, Web
from tollway.errors import NotFound, TollwayError
from tollway.payments.context import PaymentsContext


def build_console(deps: ControlDeps, ctx: PaymentsContext | None = None) -> FastAPI:
    ctx = ctx or PaymentsContext.build(
        deps.engine, deps.box, deps.settings, on_change=deps.changed, write_holds=deps.write_holds
    )
    web = Web(deps)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    router = APIRouter()
    auth_routes(router, web)
    account_routes(router, web)
    security_routes(router, web)
    customer_routes(router, web, ctx)
    staff_routes(router, web, ctx)
    overview_routes(router, web)
    catalog_routes(router, web)
    channel_routes(router, web)
    settings_routes(router, web, ctx)
    payment_return_routes(router, web, ctx)
    customer_money_routes(router, web, ctx)
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
