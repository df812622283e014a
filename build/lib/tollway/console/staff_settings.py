"""Staff page for settings: what a credit costs in each payment currency (fixed, or the live
rate plus a margin; minimum and preset amounts; enabled) through
:class:`tollway.payments.pricing.PricingService`, which payment providers are configured
(read-only: their secrets live in the environment), and the sign-up switch through
:class:`tollway.services.operator_settings.OperatorSettings`. Each change takes an optional
reason and is written to the audit log by the service. Support sees the page without forms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.console.staff_common import Form, admin_viewer, checked, staff_viewer, text
from tollway.console.web import Viewer, Web
from tollway.errors import InvalidRequest, TollwayError
from tollway.payments.context import PaymentsContext
from tollway.payments.pricing import PricingService
from tollway.payments.registry import CUSTOMER_PROVIDERS
from tollway.services.operator_settings import SIGNUP_ENABLED, OperatorSettings

Json = dict[str, Any]
PROVIDER_NAMES = {"stripe": "Stripe", "alipay": "Alipay", "epay": "EPay"}
# The environment variables that configure each provider (docs/payments.md); names only.
PROVIDER_ENV = {
    "stripe": "TOLLWAY_STRIPE_SECRET_KEY, TOLLWAY_STRIPE_WEBHOOK_SECRET",
    "alipay": "TOLLWAY_ALIPAY_APP_ID, TOLLWAY_ALIPAY_PRIVATE_KEY, TOLLWAY_ALIPAY_PUBLIC_KEY",
    "epay": "TOLLWAY_EPAY_URL, TOLLWAY_EPAY_PID, TOLLWAY_EPAY_KEY",
}


def currency_form(doc: Json) -> Form:
    return {
        "mode": doc["mode"],
        "price_per_credit": (doc["price_per_credit"] or "") if doc["mode"] == "fixed" else "",
        "fx_rate": doc["fx_rate"] or "",
        "margin": doc["margin"],
        "min_amount": doc["min_amount"],
        "presets": ", ".join(p["amount"] for p in doc["presets"]),
        "enabled": "1" if doc["enabled"] else "",
    }


def settings_routes(router: APIRouter, web: Web, ctx: PaymentsContext) -> None:
    deps = web.deps
    operator = OperatorSettings(deps.engine, {SIGNUP_ENABLED: deps.settings.signup_enabled})

    async def page(
        request: Request,
        v: Viewer,
        *,
        forms: dict[str, Form] | None = None,
        error: str | None = None,
        error_for: str = "",
        saved: str = "",
    ) -> Response:
        currencies = await PricingService(ctx, v.actor).list_json()
        shown = {d["currency"]: currency_form(d) for d in currencies}
        shown.update(forms or {})
        providers = [
            {
                "name": p,
                "label": PROVIDER_NAMES[p],
                "configured": p in ctx.registry.providers,
                "env": PROVIDER_ENV[p],
            }
            for p in CUSTOMER_PROVIDERS
        ]
        return web.render(
            request,
            "staff_settings.html",
            status=400 if error else 200,
            me=v,
            currencies=currencies,
            forms=shown,
            providers=providers,
            fx_url=bool(deps.settings.fx_url),
            signup=await operator.signup_enabled(),
            error=error,
            error_for=error_for,
            saved=saved,
        )

    @router.get("/staff/settings")
    async def settings(request: Request) -> Response:
        v = await staff_viewer(web, request)
        return await page(request, v)

    async def set_currency(request: Request, path_code: str | None) -> Response:
        v = await admin_viewer(web, request)
        form = await web.form(request)
        svc = PricingService(ctx, v.actor)
        code = (path_code or form.get("currency", "")).strip().upper()
        slot = code if path_code else "new"
        try:
            if not code:
                raise InvalidRequest("give the currency's three-letter code", param="currency")
            current = {d["currency"]: d for d in await svc.list_json()}.get(code)
            fixed = form.get("mode") == "fixed"
            fx_rate = text(form, "fx_rate")
            if fx_rate is not None and current is not None and fx_rate == current["fx_rate"]:
                fx_rate = None  # unchanged: keep the rate's source (a URL-fed rate stays fed)
            if fixed and text(form, "price_per_credit") is None:
                raise InvalidRequest("a fixed price needs the price of one credit", param="price_per_credit")
            presets = [p.strip() for p in form.get("presets", "").split(",") if p.strip()]
            await svc.set_price(
                code,
                price_per_credit=text(form, "price_per_credit") if fixed else None,
                fx_rate=None if fixed else fx_rate,
                margin=None if fixed else (text(form, "margin") or "0"),
                min_amount=text(form, "min_amount"),
                presets=presets,
                enabled=checked(form, "enabled"),
                reason=form.get("reason", "").strip(),
            )
        except TollwayError as exc:
            return await page(request, v, forms={slot: form}, error=str(exc), error_for=slot)
        ctx.changed()
        return await page(request, v, saved=code)

    @router.post("/staff/settings/currencies")
    async def add_currency(request: Request) -> Response:
        return await set_currency(request, None)

    @router.post("/staff/settings/currencies/{code}")
    async def update_currency(request: Request, code: str) -> Response:
        return await set_currency(request, code)

    @router.post("/staff/settings/signup")
    async def signup(request: Request) -> Response:
        v = await admin_viewer(web, request)
        form = await web.form(request)
        await operator.set_signup_enabled(
            checked(form, "enabled"), actor=v.actor, reason=form.get("reason", "").strip()
        )
        return await page(request, v, saved="signup")
