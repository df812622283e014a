"""Getting an account and getting back into one: sign-up (when the operator allows it),
"forgot password" (always the same neutral answer) and the emailed reset link."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.accounts.model import Role
from tollway.console.auth_pages import client_ip, operator_settings, start_session
from tollway.console.web import Web
from tollway.errors import Conflict, InvalidRequest
from tollway.services.password_reset import InvalidResetLink, PasswordResets

SIGNUP_ACTOR = "console:signup"
MIN_PASSWORD = 8


def password_problem(password: str, confirm: str) -> str | None:
    if password != confirm:
        return "mismatch"
    if len(password) < MIN_PASSWORD:
        return "short"
    return None


def account_routes(router: APIRouter, web: Web) -> None:
    deps = web.deps
    resets = PasswordResets(deps.engine, ttl_s=deps.settings.password_reset_ttl_s)
    # Counted per request, not per failure: at most 10 sign-ups per address an hour; reset mails
    # at most 3 per email and 20 per address an hour.
    signups = deps.throttles.signup
    reset_requests = deps.throttles.reset

    # --- sign-up --------------------------------------------------------------------------------

    async def signup_page(request: Request, status: int = 200, **ctx: object) -> Response:
        open_ = await operator_settings(web).signup_enabled()
        return web.render(request, "signup.html", status=status, me=None, signup_open=open_, **ctx)

    @router.get("/signup")
    async def signup_form(request: Request) -> Response:
        return await signup_page(request, error=None)

    @router.post("/signup")
    async def signup(request: Request) -> Response:
        form = await web.form(request)
        if not await operator_settings(web).signup_enabled():
            return await signup_page(request, 403)
        email = form.get("email", "").strip().lower()
        ip_key = f"ip:{client_ip(request)}"
        if await signups.blocked(ip_key):
            return await signup_page(request, 429, error="throttled", email=email)
        problem = password_problem(form.get("password", ""), form.get("confirm", ""))
        if problem:
            return await signup_page(request, 400, error=problem, email=email)
        try:
            doc = await deps.service(SIGNUP_ACTOR).create_account(
                email, password=form["password"], role=Role.CUSTOMER.value
            )
        except Conflict:
            return await signup_page(request, 409, error="taken", email=email)
        except InvalidRequest as exc:
            error = "short" if exc.param == "password" else "email"
            return await signup_page(request, 400, error=error, email=email)
        await signups.fail(ip_key)
        return await start_session(web, request, str(doc["id"]), Role.CUSTOMER.value)

    # --- forgot password ------------------------------------------------------------------------

    @router.get("/forgot")
    async def forgot_form(request: Request) -> Response:
        return web.render(request, "forgot.html", me=None, sent=False, error=None)

    @router.post("/forgot")
    async def forgot(request: Request) -> Response:
        form = await web.form(request)
        email = form.get("email", "").strip().lower()
        keys = (f"email:{email}", f"ip:{client_ip(request)}")
        if await reset_requests.blocked(*keys):
            return web.render(request, "forgot.html", status=429, me=None, sent=False, error="throttled")
        await reset_requests.fail(*keys)
        env = web.envs[web.lang(request)]

        def compose(link: str, minutes: int) -> tuple[str, str]:
            mail = env.get_template("mail_reset.html")
            ctx = mail.new_context({"link": link, "minutes": minutes})
            subject = "".join(mail.blocks["subject"](ctx)).strip()
            return subject, "".join(mail.blocks["body"](ctx)).strip() + "\n"

        base = deps.settings.public_base_url or f"{request.url.scheme}://{request.url.netloc}"
        if "@" in email and len(email) <= 320:
            await resets.request(email, base_url=base, compose=compose)
        return web.render(request, "forgot.html", me=None, sent=True, error=None)

    # --- the emailed link -----------------------------------------------------------------------

    async def reset_page(
        request: Request, token: str, status: int = 200, error: str | None = None
    ) -> Response:
        valid = await resets.account_of(token) is not None
        status = status if valid else max(status, 400)
        return web.render(
            request, "reset.html", status=status, me=None, valid=valid, token=token, error=error
        )

    @router.get("/reset/{token}")
    async def reset_form(request: Request, token: str) -> Response:
        return await reset_page(request, token)

    @router.post("/reset/{token}")
    async def reset(request: Request, token: str) -> Response:
        form = await web.form(request)
        ip_key = f"ip:{client_ip(request)}"
        if await web.throttle.blocked(ip_key):
            return await reset_page(request, token, 429, "throttled")
        problem = password_problem(form.get("password", ""), form.get("confirm", ""))
        if problem:
            return await reset_page(request, token, 400, problem)
        try:
            await resets.complete(token, form["password"])
        except InvalidResetLink:
            await web.throttle.fail(ip_key)
            return await reset_page(request, token, 400)
        except InvalidRequest:
            return await reset_page(request, token, 400, "short")
        return web.redirect("/console/login?notice=reset")
