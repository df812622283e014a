"""The control-plane application factory: ``/api/admin``, ``/api/auth``, ``/api/me``.

OpenAPI is served at ``/api/openapi.json``. No documentation UI is served: Swagger UI loads
its assets from a CDN, and Tollway serves nothing from CDNs (DESIGN.md §9).
"""

from __future__ import annotations

from fastapi import FastAPI

from tollway import __version__
from tollway.api.admin_accounts import accounts_router
from tollway.api.admin_catalog import catalog_router
from tollway.api.auth import Authenticator
from tollway.api.deps import ControlDeps
from tollway.api.errors import error_responses, install_error_handlers
from tollway.api.me_routes import auth_router, me_router
from tollway.api.middleware import RequestIdMiddleware
from tollway.api.payments_routes import payment_routers

OPENAPI_URL = "/api/openapi.json"


def build_control_app(deps: ControlDeps) -> FastAPI:
    app = FastAPI(
        title="Tollway control API",
        version=__version__,
        description=(
            "Provisioning (`/api/admin`, admin token or staff session), sign-in "
            "(`/api/auth`) and self-service (`/api/me`, session token). Money travels as "
            "decimal strings or integer nano-credits, never as JSON numbers with fractions. "
            'Errors: `{"error": {"code", "message", "param"}}`.'
        ),
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        responses=error_responses(),
    )
    app.state.deps = deps
    auth = Authenticator(deps)
    app.include_router(catalog_router(deps, auth))
    app.include_router(accounts_router(deps, auth))
    app.include_router(auth_router(deps, auth))
    app.include_router(me_router(deps, auth))
    for router in payment_routers(deps, auth):
        app.include_router(router)
    install_error_handlers(app)
    mount_console(app, deps)
    app.add_middleware(RequestIdMiddleware)
    return app


def mount_console(app: FastAPI, deps: ControlDeps) -> None:
    """The web console (src/tollway/console) at ``/console``; ``/`` leads there."""
    from fastapi.responses import RedirectResponse

    from tollway.console import build_console

    app.mount("/console", build_console(deps))

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)
